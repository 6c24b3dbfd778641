"""Frames in and out: exact reads of videos and frame folders, browser-ready H.264 writes with audio."""

from smartfocus.media.reader import VideoInfo, VideoReader, open_video
from smartfocus.media.transcode import transcode
from smartfocus.media.writer import VideoWriter

__all__ = ["VideoInfo", "VideoReader", "VideoWriter", "open_video", "transcode"]
