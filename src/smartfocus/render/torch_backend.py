"""The compositor on torch: the OpenCV look (`render.frame`) on a GPU, a batch of frames at a time.

A render on a GPU was bound by the compositing (refinement, lens blur, blend) on the CPU. Here the
same steps run on torch tensors, on YUV 4:2:0 planes like the render path: a batch of frames is
copied to the device once (through pinned memory, on its own CUDA stream), refined, stabilised,
blurred and blended there, and copied back once. On a CPU the OpenCV path stays the faster one;
this backend runs there too, so CI checks it against OpenCV (`tests/render/test_torch_backend.py`).

Each step weighs pixels as the OpenCV one does: whole-factor area shrinks are average pooling,
bilinear and bicubic resizes torch's interpolation (the same taps as OpenCV's), box filters average
pools over a BORDER_REFLECT mirror, and what torch has no equivalent for (OpenCV's fractional area
weights, resizes by a factor) is a pair of matrices made by running OpenCV's own resize on an
identity matrix. Where OpenCV works on 8 or 16-bit images the result is rounded the same way, so
the two backends differ by float rounding only (well under a level on average).

The guided filter runs over the whole frame rather than a crop around the subject: outside the
crop the OpenCV path leaves exact zeros, which the whole-frame filter also gives there (its inputs
are exactly zero), and fixed shapes keep the GPU from waiting on the CPU for crop boxes.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import cv2
import numpy as np

from smartfocus.focus.timeline import FocusState
from smartfocus.media import colour
from smartfocus.media.yuv import Yuv420Frame, YuvColour
from smartfocus.render import lens as cv_lens
from smartfocus.render import matte as cv_matte
from smartfocus.render.compositor import LensSettings
from smartfocus.render.frame import FocusedFrame
from smartfocus.vision.instances import upsample_mask

if TYPE_CHECKING:
    import torch

COMPOSITORS = ("auto", "opencv", "torch")  # "auto": torch on a CUDA device, OpenCV on the CPU
DEFAULT_BATCH = 8  # frames per transfer: enough to keep a GPU busy, little memory (~11 MB at 720p)
BLEND_EPS = 1e-5  # cv2.blendLinear divides by w1 + w2 + 1e-5


def pick_compositor(device: str | None, compositor: str = "auto") -> TorchCompositor | None:
    """The compositor a render on `device` uses: None for the OpenCV one.

    "auto" takes torch where the device (resolved like the model's: `vision.model.resolve_device`)
    is a CUDA GPU, and OpenCV on the CPU, where it is the faster; "torch" forces this backend on
    any device (on the CPU: for tests and benches), "opencv" the OpenCV one.
    """
    if compositor not in COMPOSITORS:
        raise ValueError(f"unknown compositor {compositor!r}; use one of {', '.join(COMPOSITORS)}")
    if compositor == "opencv":
        return None
    from smartfocus.vision.model import DEVICE_ENV, resolve_device

    requested = device or os.environ.get(DEVICE_ENV)
    if compositor == "auto" and (requested == "cpu" or (requested is None and not _cuda_driver())):
        return None  # decided without importing torch (seconds): a CPU re-render needs none of it

    resolved = resolve_device(device)
    if compositor == "auto" and not resolved.startswith("cuda"):
        return None
    return TorchCompositor(resolved)


def guide_grid(frame_size: tuple[int, int]) -> tuple[tuple[int, int], int]:
    """The guided filter's working size (width, height) and window radius for a frame of
    `frame_size`, as `matte._refine` sets them."""
    w, h = frame_size
    short = min(h, w)
    scale = max(1, round(short / cv_matte.GUIDE_SHORT_SIDE))
    small = (max(1, round(w / scale)), max(1, round(h / scale)))
    return small, max(1, round(cv_matte.GUIDE_RADIUS * short / scale))


def whole_guide_grid(frame_size: tuple[int, int]) -> bool:
    """Whether the guided filter's grid divides the half-resolution frame evenly (720p, 1080p, 4K
    do; 854x480 and 640x480 do not): then any crop of it is a crop of the whole frame's grid, and
    filtering the whole frame gives OpenCV's crop-by-crop result."""
    (small_w, small_h), _ = guide_grid(frame_size)
    half_w, half_h = max(1, round(frame_size[0] / 2)), max(1, round(frame_size[1] / 2))
    return half_w % small_w == 0 and half_h % small_h == 0


def _refined_on_cpu(
    half_bgr: np.ndarray, grid: np.ndarray, half: tuple[int, int], frame_size: tuple[int, int]
) -> np.ndarray:
    """`prepare_frame`'s refinement of one grid matte, with OpenCV."""
    coarse = upsample_mask(grid, half)
    return cv_matte.refine_matte_half(half_bgr, coarse, frame_size) if coarse.any() else coarse


def _cuda_driver() -> bool:
    """Whether the CUDA driver library loads: without it torch finds no GPU either."""
    for name in ("libcuda.so.1", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int, interpolation: int, factor: float | None = None) -> np.ndarray:
    """(n_out, n_in) float32 matrix M with M @ column = cv2.resize of that column to n_out.

    With `factor` the resize is by that factor (cv2.resize(..., fx=factor)), which OpenCV weighs
    slightly differently from a target size when n_in * factor is not a whole number.
    """
    eye = np.eye(n_in, dtype=np.float32)
    if factor is None:
        out = cv2.resize(eye, (n_in, n_out), interpolation=interpolation)
    else:
        out = cv2.resize(eye, None, fx=1.0, fy=factor, interpolation=interpolation)
    if out.shape != (n_out, n_in):
        raise ValueError(f"resize of {n_in} by {factor} gives {out.shape[0]} samples, not {n_out}")
    return out


def factor_size(n: int, factor: float) -> int:
    """What cv2.resize(..., fx=factor) makes of a side of `n` pixels."""
    return cv2.resize(np.zeros((1, n), np.float32), None, fx=factor, fy=1.0).shape[1]


def mirror_indices(n: int, radius: int) -> np.ndarray:
    """Indices of a side of `n` pixels padded by `radius` on both ends the BORDER_REFLECT way."""
    return np.array([cv2.borderInterpolate(i, n, cv2.BORDER_REFLECT) for i in range(-radius, n + radius)])


_MODES = {cv2.INTER_LINEAR: "bilinear", cv2.INTER_CUBIC: "bicubic"}


class TorchCompositor:
    """`render.frame.focus_frame` for batches of `Yuv420Frame`s on a torch device.

    Holds only caches (matrices and tables on the device, pinned transfer buffers): one per device
    is enough, and it is reused across renders. Not for use by two threads at once.
    """

    def __init__(self, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._tensors: dict[tuple[object, ...], torch.Tensor] = {}
        self._pinned: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"TorchCompositor({str(self.device)!r})"

    # ---------- a render's frames ----------

    def stream(
        self,
        frames: Iterator[tuple[int, Yuv420Frame]],
        state: Callable[[int], FocusState],
        lens: LensSettings,
        *,
        refine: bool = True,
        batch: int = DEFAULT_BATCH,
    ) -> Iterator[tuple[int, FocusedFrame[Yuv420Frame]]]:
        """`frames` in order, composited `batch` at a time and stabilised in frame order;
        `state(index)` is each frame's focus (a `FocusTimeline.state`)."""
        stabilizer = TorchStabilizer(self) if refine else None
        frames = iter(frames)
        while chunk := list(itertools.islice(frames, batch)):
            indices = [index for index, _ in chunk]
            states = [state(index) for index in indices]
            focused = self.focus(
                [frame for _, frame in chunk], states, lens, refine=refine, stabilizer=stabilizer
            )
            yield from zip(indices, focused, strict=True)

    def focus(
        self,
        frames: Sequence[Yuv420Frame],
        states: Sequence[FocusState],
        lens: LensSettings,
        *,
        refine: bool = True,
        stabilizer: TorchStabilizer | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[FocusedFrame[Yuv420Frame]]:
        """`focus_frame` of each frame (same size and colour, in frame order with `stabilizer`).

        `timings` (a bench's profile) gets the seconds of each stage added to it: "upload",
        "refine" (refinement and stabilisation), "blur", "blend", "download". Each stage then waits
        for the device at its end, which a render does not.
        """
        first = frames[0]
        if any(f.data.shape != first.data.shape or f.colour != first.colour for f in frames):
            raise ValueError("a batch of frames must share one size and colour")
        stage = _Stages(self, timings)
        strengths = [lens.strength * state.strength for state in states]
        with self._on_stream():
            with stage("upload"):
                planes = _Planes(self._upload([f.data for f in frames]), first.colour)
            with stage("refine"):
                half_bgr, y_half = self._half_bgr(planes)
                subject, racks = self._mattes(frames, planes, half_bgr, states, refine)
                if stabilizer is not None:
                    subject = stabilizer.update_batch(subject)
                mattes = subject.clone()
                for row, rack in racks.items():
                    mattes[row] = rack
            with stage("blur"):
                blurred_y, blurred_c, fade = self._blur(planes, half_bgr, y_half, mattes, strengths)
            with stage("blend"):
                out = self._blend_planes(planes, blurred_y, blurred_c, mattes, fade)
            with stage("download"):
                host_out = self._download("out", out)
                host_subject = self._download("subject", subject)
        results = []
        for row, (frame, strength) in enumerate(zip(frames, strengths, strict=True)):
            image = frame if strength == 0.0 else Yuv420Frame(host_out[row].copy(), frame.colour)
            results.append(FocusedFrame(image, host_subject[row].copy()))
        return results

    # ---------- transfers ----------

    def _on_stream(self) -> AbstractContextManager[object]:
        return self.torch.cuda.stream(self._stream) if self._stream is not None else nullcontext()

    def _upload(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """The uint8 `arrays` stacked on the device: through a pinned buffer on a GPU (an
        asynchronous copy)."""
        if not self.cuda:
            return self.torch.from_numpy(np.stack(arrays))
        host = self._pinned_buffer("frames", (len(arrays), *arrays[0].shape), self.torch.uint8)
        staged = host.numpy()
        for row, array in enumerate(arrays):
            staged[row] = array
        return host.to(self.device, non_blocking=True)

    def _download(self, name: str, tensor: torch.Tensor) -> np.ndarray:
        """`tensor` as a numpy array (valid until the next download of `name`)."""
        if not self.cuda:
            return tensor.numpy()
        host = self._pinned_buffer(name, tuple(tensor.shape), tensor.dtype)
        host.copy_(tensor, non_blocking=True)
        assert self._stream is not None
        self._stream.synchronize()
        return host.numpy()

    def _pinned_buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (name, shape)
        buffer = self._pinned.get(key)
        if buffer is None or buffer.dtype != dtype:
            buffer = self.torch.empty(shape, dtype=dtype, pin_memory=True)
            self._pinned[key] = buffer
        return buffer

    # ---------- device-side constants ----------

    def _constant(self, key: tuple[object, ...], make: Callable[[], np.ndarray]) -> torch.Tensor:
        tensor = self._tensors.get(key)
        if tensor is None:
            tensor = self.torch.as_tensor(np.ascontiguousarray(make()), device=self.device)
            self._tensors[key] = tensor
        return tensor

    def resize(
        self, image: torch.Tensor, size: tuple[int, int], interpolation: int, *, factor: float | None = None
    ) -> torch.Tensor:
        """cv2.resize of (..., H, W) float images to `size` = (width, height).

        Whole-factor area shrinks are torch's average pooling and plain bilinear or bicubic resizes
        its interpolation (the same weights as OpenCV's for float images); the rest (fractional area
        weights, resizes by a factor) are two matmuls with OpenCV's own weights.
        """
        h, w = image.shape[-2:]
        if (w, h) == size and factor is None:
            return image
        functional = self.torch.nn.functional
        planes = image.reshape(-1, 1, h, w)
        if factor is None and interpolation == cv2.INTER_AREA and h % size[1] == 0 and w % size[0] == 0:
            out = functional.avg_pool2d(planes, (h // size[1], w // size[0]))
            return out.reshape(*image.shape[:-2], size[1], size[0])
        if factor is None and interpolation in _MODES:
            out = functional.interpolate(
                planes, (size[1], size[0]), mode=_MODES[interpolation], align_corners=False
            )
            return out.reshape(*image.shape[:-2], size[1], size[0])
        rows, cols = (
            self._constant(
                ("resize", n, m, interpolation, factor), partial(resize_matrix, n, m, interpolation, factor)
            )
            for n, m in ((h, size[1]), (w, size[0]))
        )
        return rows @ image @ cols.T

    def box(self, image: torch.Tensor, radius: int) -> torch.Tensor:
        """`matte._box` (normalised box filter, BORDER_REFLECT) of (..., H, W) float images: the
        border mirrored by indexing (torch's own padding has no edge-repeating mirror), then two
        one-dimensional average pools."""
        h, w = image.shape[-2:]
        rows, cols = (
            self._constant(("mirror", n, radius), partial(mirror_indices, n, radius)) for n in (h, w)
        )
        padded = image.reshape(-1, 1, h, w).index_select(2, rows).index_select(3, cols)
        size = 2 * radius + 1
        functional = self.torch.nn.functional
        out = functional.avg_pool2d(functional.avg_pool2d(padded, (size, 1), stride=1), (1, size), stride=1)
        return out.reshape(image.shape)

    def shrink(self, image: torch.Tensor, size: tuple[int, int], *, integer: bool) -> torch.Tensor:
        """`lens._shrink`; `integer` rounds each step as OpenCV does for 8 and 16-bit images."""
        h, w = image.shape[-2:]
        fx, fy = w / size[0], h / size[1]
        if not (fx.is_integer() and fy.is_integer()) and fx >= 2 and fy >= 2 and w % 2 == 0 and h % 2 == 0:
            image = self.area(image, (w // 2, h // 2), integer=integer)
        return self.area(image, size, integer=integer)

    def area(self, image: torch.Tensor, size: tuple[int, int], *, integer: bool) -> torch.Tensor:
        """cv2.resize(..., INTER_AREA) to `size`; `integer`: rounded as OpenCV rounds 8 and 16-bit
        images, which is halves up for an exact 2x2 shrink (its fast path adds 2 and shifts by 2)
        and halves to even otherwise (a float result through cvRound)."""
        h, w = image.shape[-2:]
        out = self.resize(image, size, cv2.INTER_AREA)
        if not integer:
            return out
        return (out + 0.5).floor() if (w, h) == (2 * size[0], 2 * size[1]) else out.round()

    def table(self, name: str, values: np.ndarray) -> torch.Tensor:
        return self._constant(("table", name), lambda: values.astype(np.float32))

    # ---------- the steps ----------

    def _half_bgr(self, planes: _Planes) -> tuple[torch.Tensor, torch.Tensor]:
        """`Yuv420Frame.half_bgr` of the batch, (B, 3, H/2, W/2), and the luma it averaged 2x2,
        (B, H/2, W/2): floats holding uint8 values."""
        y_half = self.area(planes.y, planes.half, integer=True)
        yuv = self.torch.stack([y_half, planes.cb, planes.cr], dim=1)
        matrix = colour._to_bgr_matrix(planes.colour.colorspace, planes.colour.full_range)
        return _to_u8(self._transform(yuv, matrix)), y_half

    def _transform(self, image: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
        """cv2.transform of (B, 3, H, W) with a 3x4 matrix (before rounding)."""
        m = self._constant(("transform", matrix.tobytes()), lambda: matrix.astype(np.float32))
        return self.torch.einsum("oc,bchw->bohw", m[:, :3], image) + m[:, 3, None, None]

    def _mattes(
        self,
        frames: Sequence[Yuv420Frame],
        planes: _Planes,
        half_bgr: torch.Tensor,
        states: Sequence[FocusState],
        refine: bool,
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """`prepare_frame`'s mattes: (B, H/2, W/2) subjects, and the rack mixes of frames in one."""
        rack_rows = [row for row, s in enumerate(states) if not np.array_equal(s.matte, s.subject_matte)]
        rows = list(range(len(states))) + rack_rows
        grids = [s.subject_matte for s in states] + [states[row].matte for row in rack_rows]
        count = len(states)
        if refine and not whole_guide_grid(planes.size):
            # OpenCV's refinement samples a crop around the subject on its own grid, which the
            # whole-frame filter cannot reproduce at these sizes: run it as it is (on the CPU; such
            # frames are small) and bring the mattes over.
            halves = {row: frames[row].half_bgr() for row in set(rows)}
            refined = [
                _refined_on_cpu(halves[row], grid, planes.half, planes.size)
                for row, grid in zip(rows, grids, strict=True)
            ]
            coarse = self.torch.as_tensor(np.stack(refined), device=self.device)
            return coarse[:count], {row: coarse[count + i] for i, row in enumerate(rack_rows)}
        coarse = self.torch.as_tensor(np.stack(grids).astype(np.float32, copy=False), device=self.device)
        coarse = self.resize(coarse, planes.half, cv2.INTER_LINEAR)  # `upsample_mask`
        if refine:
            coarse = self.refine(half_bgr[rows], coarse, planes.size)
        return coarse[:count], {row: coarse[count + i] for i, row in enumerate(rack_rows)}

    def refine(
        self, half_bgr: torch.Tensor, coarse: torch.Tensor, frame_size: tuple[int, int]
    ) -> torch.Tensor:
        """`matte.refine_matte_half` of (N, H/2, W/2) mattes against their (N, 3, H/2, W/2) frames,
        over the whole frame (see `whole_guide_grid`)."""
        small, radius = guide_grid(frame_size)
        reach = 4 * radius + 1
        half = (half_bgr.shape[-1], half_bgr.shape[-2])

        p = self.resize(coarse, small, cv2.INTER_AREA)
        guide_small = self.area(half_bgr, small, integer=True)
        guide = _TorchGuide(self, guide_small, radius)
        peak = _dilate(p, reach)
        p = p / peak.clamp(min=1e-6)
        for _ in range(cv_matte.GUIDE_PASSES - 1):
            p = _smoothstep(cv_matte.CONTRAST_LOW, cv_matte.CONTRAST_HIGH, _apply(guide.fit(p), guide_small))
        coeffs = self.resize(guide.fit(p), half, cv2.INTER_LINEAR)
        matte = _smoothstep(cv_matte.CONTRAST_LOW, cv_matte.CONTRAST_HIGH, _apply(coeffs, half_bgr))
        return matte * self.resize(peak, half, cv2.INTER_LINEAR)

    def _blur(
        self,
        planes: _Planes,
        half_bgr: torch.Tensor,
        y_half: torch.Tensor,
        matte_half: torch.Tensor,
        strengths: list[float],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`compositor.composite_yuv`'s blurred background, as luma and chroma planes, and each
        frame's fade (how much of the blur is shown)."""
        torch = self.torch
        shape = (planes.size[1], planes.size[0])
        radii = [s * cv_lens.max_radius(shape) for s in strengths]
        fades = [min(1.0, r / cv_lens.min_radius(shape)) for r in radii]
        fade = torch.tensor(fades, device=self.device)[:, None, None]
        linear = self._to_linear_small(planes, half_bgr, y_half, shape)
        small_bgr = self._blurred_background_small(linear, matte_half, radii, shape)
        c = planes.colour
        small = _to_u8(self._transform(small_bgr, colour._to_yuv_matrix(c.colorspace, c.full_range)))
        blurred_y = _to_u8(self.resize(small[:, 0], planes.size, cv2.INTER_CUBIC))
        blurred_c = _to_u8(self.resize(small[:, 1:], planes.half, cv2.INTER_CUBIC))
        return blurred_y, blurred_c, fade

    def _blend_planes(
        self,
        planes: _Planes,
        blurred_y: torch.Tensor,
        blurred_c: torch.Tensor,
        matte_half: torch.Tensor,
        fade: torch.Tensor,
    ) -> torch.Tensor:
        """`compositor.composite_yuv`'s blend of sharp and blurred planes: (B, H * 3 / 2, W) uint8."""
        torch = self.torch
        chroma = _blend(blurred_c, torch.stack([planes.cb, planes.cr], 1), matte_half[:, None], fade[:, None])
        luma = _blend(blurred_y, planes.y, self.resize(matte_half, planes.size, cv2.INTER_LINEAR), fade)
        out = torch.cat([luma, chroma.reshape(len(luma), -1, planes.size[0])], dim=1)
        return out.to(torch.uint8)

    def _to_linear_small(
        self, planes: _Planes, half_bgr: torch.Tensor, y_half: torch.Tensor, shape: tuple[int, int]
    ) -> torch.Tensor:
        """`lens.to_linear_small` of the batch: (B, 3, h, w) float at the working size."""
        lut = cv_lens.decode_lut_u16()
        luma_lut = lut if planes.colour.full_range else lut[colour.range_tables(False, True)[0]]
        lut_t, luma_t = (
            self.table("decode", lut),
            self.table(f"decode-luma-{planes.colour.full_range}", luma_lut),
        )
        small = cv_lens.working_size(shape)
        linear = self.shrink(lut_t[half_bgr.long()], small, integer=True)
        fine = self.shrink(luma_t[planes.y.long()], small, integer=True)
        coarse = self.shrink(luma_t[y_half.long()], small, integer=True)
        return linear * ((fine + 1.0) / (coarse + 1.0))[:, None]

    def _blurred_background_small(
        self, linear: torch.Tensor, matte_half: torch.Tensor, radii: list[float], shape: tuple[int, int]
    ) -> torch.Tensor:
        """`lens.blurred_background_small` of the batch: (B, 3, h, w) float holding uint8 BGR."""
        torch = self.torch
        small = cv_lens.working_size(shape)
        scale = cv_lens.working_scale(shape)
        matte_small = self.shrink(matte_half, small, integer=False)
        weight = (1.0 - _dilate(matte_small, 1))[:, None]
        premult = torch.cat([linear * (weight * (cv_lens.HIGHLIGHT_GAIN / 65535.0)), weight], dim=1)
        blurred = self._fill_holes(
            self._disc_blur(premult, [max(r / scale, cv_lens.MIN_WORK_RADIUS) for r in radii])
        )
        return self._encode(blurred[:, :3] / blurred[:, 3:].clamp(min=1e-12))

    def _disc_blur(self, image: torch.Tensor, radii: list[float]) -> torch.Tensor:
        """`lens.disc_blur` with each frame's own disc, as one grouped convolution (zero borders).

        In float64: cuDNN may run float32 convolutions in TF32 (10-bit mantissas), which would move
        the blur by levels; the working-size images are small enough for the double precision.
        """
        kernels = [cv_lens.disc_kernel(r) for r in radii]
        size = max(k.shape[0] for k in kernels)
        stacked = np.zeros((len(kernels), size, size), np.float64)
        for row, k in enumerate(kernels):  # smaller discs centred in zeros: the same filter
            pad = (size - k.shape[0]) // 2
            stacked[row, pad : pad + k.shape[0], pad : pad + k.shape[0]] = k
        batch, channels, h, w = image.shape
        weight = self.torch.as_tensor(stacked, device=self.device).repeat_interleave(channels, 0)[:, None]
        out = self.torch.nn.functional.conv2d(
            image.reshape(1, batch * channels, h, w).double(),
            weight,
            padding=size // 2,
            groups=batch * channels,
        )
        return out.reshape(batch, channels, h, w).float()

    def _fill_holes(self, blurred: torch.Tensor) -> torch.Tensor:
        """`lens._fill_holes` (push-pull) of (B, C, h, w)."""
        levels = [blurred]
        while min(levels[-1].shape[-2:]) > 4:
            h, w = levels[-1].shape[-2:]
            size = (factor_size(w, 0.25), factor_size(h, 0.25))
            levels.append(self.resize(levels[-1], size, cv2.INTER_AREA, factor=0.25))
        filled = levels[-1]
        for level in reversed(levels[:-1]):
            size = (level.shape[-1], level.shape[-2])
            filled = level + 1e-3 * self.resize(filled, size, cv2.INTER_LINEAR)
        return filled

    def _encode(self, lin: torch.Tensor) -> torch.Tensor:
        """`lens.encode`: linear (expanded) light to sRGB byte values, through the same table."""
        steps = cv_lens._ENCODE_STEPS
        scaled = (lin * ((steps - 1) / cv_lens.HIGHLIGHT_GAIN) + 0.5).clamp(0, steps - 1)
        return self.table("encode", cv_lens.encode_lut())[scaled.long()]


class _Stages:
    """`with stages("name"):` adds the block's seconds to `timings["name"]`, the device waited for
    at its end; does nothing without `timings`."""

    def __init__(self, compositor: TorchCompositor, timings: dict[str, float] | None) -> None:
        self.compositor, self.timings = compositor, timings

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        yield
        if self.compositor.cuda:
            self.compositor.torch.cuda.synchronize(self.compositor.device)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


class _Planes:
    """A batch of I420 frames on the device as float planes (views of one upload)."""

    def __init__(self, data: torch.Tensor, yuv: YuvColour) -> None:
        batch, rows, width = data.shape
        height = rows * 2 // 3
        self.colour = yuv
        self.size = (width, height)
        self.half = (width // 2, height // 2)
        values = data.float()
        self.y = values[:, :height]
        chroma = values[:, height:].reshape(batch, 2, height // 2, width // 2)
        self.cb, self.cr = chroma[:, 0], chroma[:, 1]


class _TorchGuide:
    """`matte._Guide` for (N, 3, h, w) guides holding uint8 values."""

    def __init__(self, compositor: TorchCompositor, image_bgr: torch.Tensor, radius: int) -> None:
        box = compositor.box
        self.box, self.radius = box, radius
        self.planes = planes = image_bgr / 255.0
        b, g, r = planes.unbind(1)
        self.means = box(planes, radius).unbind(1)
        products = box(compositor.torch.stack([b * b, b * g, b * r, g * g, g * r, r * r], 1), radius).unbind(
            1
        )
        self.inverse = cv_matte.inverse_covariance(products, self.means, cv_matte.GUIDE_EPS)
        self.stack = compositor.torch.stack

    def fit(self, p: torch.Tensor) -> torch.Tensor:
        """(N, 4, h, w) window-averaged (a_b, a_g, a_r, b) of the local model p ~ a . colour + b."""
        mean_p = self.box(p, self.radius)
        corr = self.box(self.planes * p[:, None], self.radius).unbind(1)
        c_b, c_g, c_r = (c - m * mean_p for c, m in zip(corr, self.means, strict=True))
        i_bb, i_bg, i_br, i_gg, i_gr, i_rr = self.inverse
        a_b = c_b * i_bb + c_g * i_bg + c_r * i_br
        a_g = c_b * i_bg + c_g * i_gg + c_r * i_gr
        a_r = c_b * i_br + c_g * i_gr + c_r * i_rr
        mb, mg, mr = self.means
        offset = mean_p - a_b * mb - a_g * mg - a_r * mr
        return self.box(self.stack([a_b, a_g, a_r, offset], 1), self.radius)


class TorchStabilizer:
    """`matte.MatteStabilizer` on the device: one per render, fed every frame in order."""

    def __init__(self, compositor: TorchCompositor) -> None:
        self.compositor = compositor
        self._state: torch.Tensor | None = None

    def update_batch(self, mattes: torch.Tensor) -> torch.Tensor:
        """The (B, H, W) mattes stabilised in order; an all-zero matte passes as it is (as in
        `render.frame.stabilise`) and leaves the state alone."""
        present = mattes.flatten(1).amax(1).gt(0).tolist()  # one wait for the device per batch
        out = [self.update(m) if has_subject else m for m, has_subject in zip(mattes, present, strict=True)]
        return self.compositor.torch.stack(out)

    def update(self, matte: torch.Tensor) -> torch.Tensor:
        if self._state is None:
            self._state = matte.clone()
            return self._state
        c = self.compositor
        h, w = matte.shape
        short = min(h, w)
        scale = max(1, round(short / cv_matte.GUIDE_SHORT_SIDE))
        small = (max(1, round(w / scale)), max(1, round(h / scale)))
        changed = c.resize((matte - self._state).abs(), small, cv2.INTER_AREA)
        window = max(1, round(cv_matte.STABLE_WINDOW * short / scale))
        displacement = c.box(changed, window) * ((2 * window + 1) * scale)
        low, high = cv_matte.SHIMMER_PX * short / 720, cv_matte.MOTION_PX * short / 720
        follow = _smoothstep(low, high, displacement)
        follow = _dilate(follow, window)
        step = c.resize(
            cv_matte.STABLE_STEP + (1.0 - cv_matte.STABLE_STEP) * follow, (w, h), cv2.INTER_LINEAR
        )
        self._state = (self._state * (1.0 - step) + matte * step) / (1.0 + BLEND_EPS)
        return self._state


def _smoothstep(low: float, high: float, x: torch.Tensor) -> torch.Tensor:
    """`matte._smoothstep`."""
    t = ((x - low) / (high - low)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _dilate(image: torch.Tensor, radius: int) -> torch.Tensor:
    """cv2.dilate of (..., H, W) with a (2 radius + 1) square: a row then a column max filter.

    Past the border counts as -inf, as in OpenCV's default (replicating the edge gives the same)."""
    import torch

    h, w = image.shape[-2:]
    planes = image.reshape(-1, 1, h, w)
    size = 2 * radius + 1
    planes = torch.nn.functional.max_pool2d(planes, (size, 1), stride=1, padding=(radius, 0))
    planes = torch.nn.functional.max_pool2d(planes, (1, size), stride=1, padding=(0, radius))
    return planes.reshape(image.shape)


def _apply(coeffs: torch.Tensor, image_bgr: torch.Tensor) -> torch.Tensor:
    """`matte._apply`: q = a . colour / 255 + b per pixel."""
    return (coeffs[:, :3] * image_bgr).sum(1) / 255.0 + coeffs[:, 3]


def _blend(
    blurred: torch.Tensor, sharp: torch.Tensor, matte: torch.Tensor, fade: torch.Tensor
) -> torch.Tensor:
    """`compositor._blend_into` (cv2.blendLinear: sharp * (1 - w) + blurred * w, w the background's
    weight), rounded to bytes."""
    weight_bg = (1.0 - matte) * fade
    return _to_u8((sharp * (1.0 - weight_bg) + blurred * weight_bg) / (1.0 + BLEND_EPS))


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    """Rounded and saturated to byte values, as OpenCV stores 8-bit results (kept as float)."""
    return x.round().clamp(0.0, 255.0)
