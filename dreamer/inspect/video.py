"""MP4 files of uint8 RGB frames, through PyAV (FFmpeg's libraries), and PNG images through Pillow."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np


def write_mp4(path: Path | str, frames: np.ndarray, fps: float = 15) -> Path:
    """Frames (T, H, W, 3) uint8 → an H.264 MP4 at `path` (written beside it, then renamed, so a
    reader never sees half a file). Frames of odd height or width get a black last row or column,
    as H.264 needs even sizes."""
    import av

    path = Path(path)
    frames = np.asarray(frames, np.uint8)
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("h264", rate=round(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}  # close to lossless: small frames, small files anyway
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    os.replace(tmp, path)
    return path


def read_mp4(path: Path | str) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 of an MP4 file."""
    import av

    with av.open(str(path)) as video:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)])


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image as PNG."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(out, format="PNG")
    return out.getvalue()
