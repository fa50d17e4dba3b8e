"""Second stage: does a candidate share the query's *geometry*, not just its look?

A global CNN vector cannot tell an edited copy from another photo of a similar subject:
on the benchmark, 1% of pictures that are not in the index still find a look-alike (two
star clusters, two drawings in one style) above 0.94, while blurred, cropped or captioned
copies often score less. Local features settle it. Each stored image keeps up to
``MAX_POINTS`` ORB keypoints (position + 32-byte binary descriptor, ~9 KB, in a file beside
its thumbnail: ``bogv.sidecar``); at search time
the query's keypoints are matched against the few best candidates' (ratio test), and RANSAC
fits one similarity transform (shift, scale, rotation: what crops, resizes, screenshots
and small rotations do). A copy keeps dozens to hundreds of consistent matches through
recompression, blur, captions and colour changes; different pictures keep a handful.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

__all__ = ["MAX_POINTS", "SIDE", "VERSION", "grey", "inliers", "keypoints", "keypoints_of"]

VERSION = "orb320-v1"
"""Changes whenever stored keypoints change (part of the model id)."""

SIDE = 320
"""Keypoints are found on the image shrunk to fit this square: enough detail, ~3 ms."""
MAX_POINTS = 250
_RATIO = 0.8
_MIN_MATCHES = 6
_SCALES = (1 / 8, 8)
"""How far a copy's keypoints may be shrunk or enlarged against the original's (both are
found at most ``SIDE`` px, so a wider span needs a picture under 40 px). Outside it lies
RANSAC's degenerate answer: when many query points match one stored keypoint (a stored
image with a handful of keypoints, a chessboard's repeated corners), a transform that
shrinks the query to that point "explains" them all: 142 inliers between skimage's
chessboard and moon, where copies need ``scoring.COPY_INLIERS``."""

_orb_params = {"nfeatures": MAX_POINTS, "fastThreshold": 10, "edgeThreshold": 15,
               "patchSize": 15}
_POINT = np.dtype([("x", "<u2"), ("y", "<u2"), ("d", "u1", 32)])


def grey(img: Image.Image) -> np.ndarray:
    """The picture keypoints are found on: grey, shrunk to fit ``SIDE``."""
    # Only shrunk, never enlarged: enlarging small images to SIDE was measured to find
    # fewer blurred, cropped and screenshotted copies (it moves their keypoints' scales).
    small = img.convert("L")
    small.thumbnail((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(small)


def keypoints(img: Image.Image) -> bytes:
    """ORB keypoints of an RGB image, packed: 36 bytes a point."""
    return keypoints_of(grey(img))


def keypoints_of(small: np.ndarray) -> bytes:
    """ORB keypoints of a ``grey`` picture, packed."""
    points, desc = cv2.ORB_create(**_orb_params).detectAndCompute(small, None)
    if desc is None:
        return b""
    xy = np.rint(cv2.KeyPoint_convert(points) * 8)  # 1/8 pixel steps fit in uint16
    packed = np.zeros(len(points), _POINT)
    packed["x"], packed["y"], packed["d"] = xy[:, 0], xy[:, 1], desc
    return packed.tobytes()


def _unpack(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    packed = np.frombuffer(data, _POINT)
    xy = np.stack([packed["x"], packed["y"]], axis=1).astype(np.float32) / 8
    return xy, np.ascontiguousarray(packed["d"])


def inliers(query: bytes, stored: bytes) -> int:
    """How many keypoint matches one similarity transform explains (0 when unsure)."""
    if not query or not stored:
        return 0
    (qxy, qd), (sxy, sd) = _unpack(query), _unpack(stored)
    if len(qd) < 2 or len(sd) < 2:
        return 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(qd, sd, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < _RATIO * p[1].distance]
    if len(good) < _MIN_MATCHES:
        return 0
    cv2.setRNGSeed(7)  # RANSAC samples at random: the same pair always gets the same count
    src = qxy[[m.queryIdx for m in good]]
    dst = sxy[[m.trainIdx for m in good]]
    matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                               ransacReprojThreshold=4.0)
    if mask is None or not _SCALES[0] <= math.hypot(matrix[0, 0], matrix[1, 0]) <= _SCALES[1]:
        return 0
    return int(mask.sum())
