// Talking to the smartfocus server: JSON calls with its one error shape, uploads, job progress.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  const body = await response.json().catch(() => null);
  const error = body && body.error ? body.error : { code: "http_error", message: `${response.status} ${response.statusText}` };
  return new ApiError(response.status, error.code, error.message);
}

/** fetch + JSON in and out; throws ApiError with the server's message. */
export async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** POST /upload with XHR, for upload progress (fetch has none); resolves to the server's answer. */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/upload");
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      const body = request.response;
      if (request.status >= 200 && request.status < 300) resolve(body);
      else {
        const error = body && body.error ? body.error : { code: "http_error", message: `upload failed (${request.status})` };
        reject(new ApiError(request.status, error.code, error.message));
      }
    });
    request.addEventListener("error", () => reject(new ApiError(0, "network", "the upload was interrupted; try again")));
    const form = new FormData();
    form.append("file", file);
    request.send(form);
  });
}

/** Follow a job over its WebSocket until it finishes; falls back to polling if the socket drops. */
export function followJob(jobId, onUpdate) {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${jobId}`);
    let last = null;
    socket.addEventListener("message", (event) => {
      last = JSON.parse(event.data);
      onUpdate(last);
    });
    socket.addEventListener("close", async () => {
      if (last && ["done", "failed", "cancelled"].includes(last.state)) return resolve(last);
      try {
        for (;;) {
          last = await api(`/jobs/${jobId}`);
          onUpdate(last);
          if (["done", "failed", "cancelled"].includes(last.state)) return resolve(last);
          await new Promise((r) => setTimeout(r, 500));
        }
      } catch (error) {
        reject(error);
      }
    });
  });
}
