"""Live autofocus: frames that arrive one by one (a camera, a WebRTC track) and a desktop window."""
