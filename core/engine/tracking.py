"""Group face boxes across sampled frames into tracks, one per person.

Sampled frames are far apart in time (32 frames over a 30 s clip is about one per second), so a
person can move a lot between two samples, be missed in some, and two people can cross. Each
track therefore predicts where its face should be next from its last two boxes (constant
velocity, scaled by how many samples were skipped), and a face joins the track whose prediction
is nearest, measured in face sizes so that it works the same for close-ups and distant faces.
A face that matches no track starts a new one; nothing is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.types import Box

# A face may join a track when its centre is within this many face sizes of where the track was
# last seen (or is predicted to be), plus a little more for each sample the track was missed in.
# Measured on the FaceForensics++ actor clips: with about one sample per second, a background face
# in a panning shot moves 1.0-1.7 face sizes between samples, and a reframing jump 1.1-1.5; two
# people side by side are about 3 face sizes apart (and the one-to-one matching keeps them apart).
MAX_CENTRE_DISTANCE = 2.0
EXTRA_DISTANCE_PER_GAP = 0.5
MAX_DISTANCE_FOR_GAPS = 3.0
# Boxes that overlap this much are the same person whatever their centre distance says.
MIN_IOU = 0.3
# Faces of one person keep roughly the same size between samples; a face more than twice as
# large (or small) as the track's last one is someone else (a person behind, nearer the camera).
MAX_SIZE_RATIO = 2.0


@dataclass
class _TrackState:
    """What the tracker remembers about one person while it walks through the frames."""

    members: list[tuple[int, int]] = field(default_factory=list)  # (frame position, face position)
    boxes: list[Box] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # frame positions, increasing

    def predicted(self, position: int) -> Box:
        """Where the face should be at ``position``: last box moved by the recent velocity."""
        last = self.boxes[-1]
        if len(self.boxes) < 2:
            return last
        before = self.boxes[-2]
        steps = self.positions[-1] - self.positions[-2]
        ahead = position - self.positions[-1]
        vx = (last.cx - before.cx) / steps
        vy = (last.cy - before.cy) / steps
        return Box(last.x + vx * ahead, last.y + vy * ahead, last.w, last.h)


def _size(box: Box) -> float:
    return max(1.0, (max(box.w, 0.0) * max(box.h, 0.0)) ** 0.5)


def _centre_distance(a: Box, b: Box) -> float:
    """Distance between centres in units of the mean face size."""
    dist = ((a.cx - b.cx) ** 2 + (a.cy - b.cy) ** 2) ** 0.5
    return dist / ((_size(a) + _size(b)) / 2)


def _match_cost(track: _TrackState, box: Box, position: int) -> float | None:
    """How far ``box`` is from ``track`` at ``position`` (lower is better); None if it can't join."""
    last = track.boxes[-1]
    ratio = _size(box) / _size(last)
    if ratio > MAX_SIZE_RATIO or ratio < 1 / MAX_SIZE_RATIO:
        return None
    gap = position - track.positions[-1] - 1
    allowed = min(MAX_DISTANCE_FOR_GAPS, MAX_CENTRE_DISTANCE + EXTRA_DISTANCE_PER_GAP * gap)
    to_prediction = _centre_distance(track.predicted(position), box)
    to_last = _centre_distance(last, box)
    # Gate on the more forgiving of the two (a person who stops is not where velocity says), but
    # rank by the prediction, which is what tells two crossing people apart.
    if min(to_prediction, to_last) > allowed and last.iou(box) < MIN_IOU:
        return None
    return to_prediction


def assign_tracks(boxes_per_frame: list[list[Box]]) -> list[list[int]]:
    """Give every face box a track id, one track per person.

    Args:
        boxes_per_frame: for each sampled frame, in time order, the face boxes found in it.

    Returns:
        The same nesting as ``boxes_per_frame`` holding track ids. Ids are numbered by how many
        faces a track has (0 = the most seen person; ties go to the one seen first). Two faces
        of one frame never share an id.
    """
    tracks: list[_TrackState] = []
    for position, boxes in enumerate(boxes_per_frame):
        candidates = []
        for t, track in enumerate(tracks):
            for f, box in enumerate(boxes):
                cost = _match_cost(track, box, position)
                if cost is not None:
                    candidates.append((cost, t, f))
        # Greedy one-to-one matching, best pairs first: with a handful of faces per frame this
        # gives the same answer as an optimal assignment without pulling in a solver.
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        for _, t, f in sorted(candidates):
            if t in used_tracks or f in used_faces:
                continue
            used_tracks.add(t)
            used_faces.add(f)
            _extend(tracks[t], position, f, boxes[f])
        for f, box in enumerate(boxes):
            if f not in used_faces:
                tracks.append(_TrackState())
                _extend(tracks[-1], position, f, box)

    order = sorted(range(len(tracks)), key=lambda t: (-len(tracks[t].members), tracks[t].members[0]))
    ids: list[list[int]] = [[-1] * len(boxes) for boxes in boxes_per_frame]
    for new_id, t in enumerate(order):
        for position, f in tracks[t].members:
            ids[position][f] = new_id
    return ids


def _extend(track: _TrackState, position: int, face: int, box: Box) -> None:
    track.members.append((position, face))
    track.boxes.append(box)
    track.positions.append(position)
