"""The HTTP server: FastAPI routers for the page, video sessions and live WebRTC streams."""
