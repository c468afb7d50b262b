"""An analysis holds a bounded number of decoded frames at full resolution, however many it samples.

Before: every sampled frame stayed decoded until the end (128 frames of a 4K clip are 3 GB).
Now each is let go once its faces are cut, and decoding runs at most one detection batch ahead.
Counted through the one place frames are made (``frame_reader.Frame``): each image is wrapped in
a weak-referenceable view, and the test records how many are alive at once.
"""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np

from core.engine import analysis, faces, frame_reader
from core.settings import get_settings
from core.types import Frame


class _Tracked(np.ndarray):
    """A view of a decoded frame that supports weak references (plain ndarrays do not)."""


class FrameCounter:
    def __init__(self):
        self.alive = self.peak = self.made = 0
        self._lock = threading.Lock()

    def frame(self, index, time_s, image):
        tracked = image.view(_Tracked)
        with self._lock:
            self.alive += 1
            self.made += 1
            self.peak = max(self.peak, self.alive)
        weakref.finalize(tracked, self._gone)
        return Frame(index=index, time_s=time_s, image=tracked)

    def _gone(self):
        with self._lock:
            self.alive -= 1


def test_decoded_frames_alive_at_once_stay_bounded(face_clip, monkeypatch):
    counter = FrameCounter()
    monkeypatch.setattr(frame_reader, "Frame", counter.frame)
    gc.collect()
    report = analysis.analyze_loaded(face_clip, [], frames=48, settings=get_settings())
    assert counter.made == len(report.sampling.frame_indices) == 48
    assert len(report.faces) == 48, "every frame must have a face, or missed frames may be kept"
    # The decoder's queue (one batch), the batch waiting for MTCNN, and the frame being decoded.
    assert counter.peak <= 2 * faces.DETECT_BATCH + 1, f"{counter.peak} frames were alive at once"


def test_report_crops_are_kept_at_a_bounded_size(shared_data):
    # A 1080p DFDC clip: its face crops are larger than KEEP_CROP_SIDE at native size.
    report = analysis.analyze_loaded(shared_data / "clips/real/dfdc_lynaeydofd.mp4", [], frames=4)
    assert report.crops
    assert max(max(c.image.shape[:2]) for c in report.crops) == analysis.KEEP_CROP_SIDE
