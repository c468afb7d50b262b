"""Regenerate the sample clips in samples/ (the "Try a sample clip" button of the Analyze page).

The only source is ``skimage.data.astronaut()``: NASA's portrait of astronaut Eileen Collins, a
public-domain photograph bundled with scikit-image. A slow zoom and pan over it gives a ~5 s clip
with one real, well-lit face — enough to show every part of the page without shipping anyone
else's video. Frames are piped raw into Debian's ffmpeg to get H.264 (OpenCV cannot write H.264).

Usage::

    python scripts/make_samples.py            # writes samples/astronaut_zoom.mp4
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
OUT_SIZE = 360  # square output side in pixels: small file, face still ~150 px wide
FPS = 25
SECONDS = 5.0


def zoom_frames(image: np.ndarray, n_frames: int, out_size: int) -> list[np.ndarray]:
    """Frames of a gentle zoom (1.0x → 1.35x) that drifts towards the face.

    Args:
        image: RGB uint8 source picture (square).
        n_frames: how many frames to make.
        out_size: side of the square output frames.

    Returns:
        RGB uint8 frames of shape (out_size, out_size, 3).
    """
    side = image.shape[0]
    # The astronaut's face is roughly centred at (x=220, y=150) in the 512 px picture.
    face_x, face_y = 220.0, 150.0
    frames = []
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * t)  # smooth start and stop
        zoom = 1.0 + 0.35 * ease
        win = side / zoom
        cx = side / 2 + (face_x - side / 2) * ease * 0.6
        cy = side / 2 + (face_y - side / 2) * ease * 0.6
        x0 = float(np.clip(cx - win / 2, 0, side - win))
        y0 = float(np.clip(cy - win / 2, 0, side - win))
        # An affine warp gives sub-pixel window positions, so the motion has no jitter.
        scale = out_size / win
        matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
        frames.append(cv2.warpAffine(image, matrix, (out_size, out_size), flags=cv2.INTER_AREA))
    return frames


def write_h264(frames: list[np.ndarray], out_path: Path, fps: int, ffmpeg: str) -> None:
    """Pipe RGB frames into ffmpeg and write a web-friendly H.264 mp4."""
    height, width = frames[0].shape[:2]
    cmd = [
        ffmpeg,
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "slow",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-map_metadata",
        "-1",
        str(out_path),
    ]
    payload = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    subprocess.run(cmd, input=payload, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=SAMPLES_DIR)
    args = parser.parse_args(argv)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("error: ffmpeg is needed to write H.264 (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / "astronaut_zoom.mp4"
    frames = zoom_frames(data.astronaut(), int(FPS * SECONDS), OUT_SIZE)
    write_h264(frames, out, FPS, ffmpeg)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(frames)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
