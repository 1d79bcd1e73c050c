"""Synthetic grayscale faces showing the seven FER2013 expressions.

Nobody may download FER2013, CK+, JAFFE or FERG here, so the demo, the tests and the benchmarks
train on these instead. A face is drawn from smooth shapes (head, hair, eyes, brows, nose, mouth)
in a canonical face frame; the expression moves the brows, eyes, mouth and nose the way the
Facial Action Coding System describes them, and in-the-wild nuisance (pose, scale, in-plane
rotation, lighting, noise, occlusion, glasses) gives a spatial transformer something to undo.

Everything is vectorised over a chunk of faces with numpy (no Python loop per pixel): a few
thousand 48x48 faces a second on one core.
The output is a deterministic function of (labels, seed, size, subject_ids, nuisance).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from contract.data import EMOTIONS, IMAGE_SIZE

# Largest size drawn directly; bigger outputs are drawn at this size and upscaled with Pillow
# (a 256x256 face needs no more detail than 128x128 holds, and costs 4x less to draw).
MAX_RENDER_SIZE = 128
_CHUNK_PIXELS = 1 << 18  # faces per chunk = this / pixels per face: temporaries stay ~1 MB

# Expression geometry, in face units (the head's half-height is about 1; v grows downwards).
#   brow_y: brow offset (+ lower)       brow_tilt: inner end lower than outer (+ frown, - worry)
#   brow_arch: curvature of the brow     eye_open: eyelid opening (x identity's eye height)
#   mouth_curve: corners up (+ smile)    mouth_open: half-opening of the lips
#   mouth_width: x identity's width      teeth: visible upper teeth
#   wrinkle: nose wrinkle + raised upper lip on one side (disgust)
#   folds: nasolabial folds (smile, disgust)   smirk: one mouth corner raised (contempt)
_EXPRESSION_PARAMS = ("brow_y", "brow_tilt", "brow_arch", "eye_open", "mouth_curve",
                      "mouth_open", "mouth_width", "teeth", "wrinkle", "folds", "smirk")
_EXPRESSIONS = {  # keys are contract.data.EMOTIONS, then EXTRA_EXPRESSIONS
    #           brow_y  tilt   arch  eye   curve  open   width teeth wrinkle folds smirk
    "angry":    (0.08,  0.17,  0.00, 0.55, -0.04, 0.00,  0.80, 0.0,  0.0,    0.0,  0.0),
    "disgust":  (0.05,  0.06,  0.00, 0.50, -0.07, 0.025, 0.90, 0.6,  1.0,    0.8,  0.0),
    "fear":     (-0.08, -0.09, 0.00, 1.40, -0.03, 0.065, 1.20, 0.6,  0.0,    0.0,  0.0),
    "happy":    (-0.01, 0.00,  0.03, 0.65, 0.13,  0.045, 1.25, 1.0,  0.0,    1.0,  0.0),
    "sad":      (0.00,  -0.13, 0.00, 0.70, -0.11, 0.00,  0.90, 0.0,  0.0,    0.0,  0.0),
    "surprise": (-0.13, 0.00,  0.08, 1.50, 0.00,  0.15,  0.55, 0.0,  0.0,    0.0,  0.0),
    "neutral":  (0.00,  0.00,  0.02, 1.00, 0.00,  0.00,  1.00, 0.0,  0.0,    0.0,  0.0),
    "contempt": (0.02,  0.00,  0.02, 0.85, 0.00,  0.00,  1.00, 0.0,  0.0,    0.4,  0.20),
}
# Expressions beyond FER2013's seven, drawn for the datasets that have them (CK+ contempt); their
# ids follow EMOTIONS: CONTEMPT == 7.
EXTRA_EXPRESSIONS = ("contempt",)
CONTEMPT = len(EMOTIONS) + EXTRA_EXPRESSIONS.index("contempt")
_EXPRESSION_TABLE = np.array([_EXPRESSIONS[name] for name in EMOTIONS + EXTRA_EXPRESSIONS],
                             dtype=np.float32)
_NEUTRAL = _EXPRESSION_TABLE[EMOTIONS.index("neutral")]
# Per-face jitter added to each expression parameter (same order), before the intensity scaling.
_EXPRESSION_JITTER = np.array([0.02, 0.025, 0.015, 0.12, 0.02, 0.012, 0.08, 0.2, 0.15, 0.2, 0.01],
                              dtype=np.float32)
# Bounds after intensity and jitter: no negative opening, and every feature stays in its window.
_EXPRESSION_LOW = np.array([-0.2, -0.25, -0.05, 0.15, -0.25, 0.0, 0.35, 0.0, 0.0, 0.0, 0.0],
                           np.float32)
_EXPRESSION_HIGH = np.array([0.15, 0.25, 0.15, 2.0, 0.25, 0.25, 1.6, 1.0, 1.2, 1.2, 0.3],
                            np.float32)

# Identity: what stays the same across one subject's images. (low, high) uniform ranges.
_IDENTITY_RANGES = {
    "face_w": (0.64, 0.80), "face_h": (0.90, 1.00), "skin": (0.38, 0.82), "hair": (0.05, 0.75),
    "hairline": (-0.78, -0.52), "hair_side": (0.0, 0.12), "eye_x": (0.27, 0.35),
    "eye_y": (-0.20, -0.10), "eye_w": (0.11, 0.15), "eye_h": (0.055, 0.075),
    "iris": (0.05, 0.30), "brow_gap": (0.15, 0.20), "brow_len": (0.12, 0.17),
    "brow_thick": (0.022, 0.040), "nose_len": (0.22, 0.32), "mouth_y": (0.44, 0.56),
    "mouth_w": (0.20, 0.28), "lip_thick": (0.020, 0.034), "lip_tone": (0.45, 0.75),
    "resting_curve": (-0.015, 0.015), "expressiveness": (0.8, 1.2), "glasses": (0.0, 1.0),
}
_IDENTITY_NAMES = tuple(_IDENTITY_RANGES)
_IDENTITY_LOW = np.array([r[0] for r in _IDENTITY_RANGES.values()], dtype=np.float32)
_IDENTITY_HIGH = np.array([r[1] for r in _IDENTITY_RANGES.values()], dtype=np.float32)
GLASSES_SHARE = 0.15  # identities wearing glasses
_TEXTURE_CELLS = 5  # background texture: a coarse random grid, smoothly upsampled
_SUBJECT_STREAM = 0x5EED_FACE  # keys a subject's identity independently of the image seed

# Difficulty, calibrated with bench/demo_data_learnability.py (Deep-Emotion must learn it in
# minutes on a CPU, a linear model must not). Expression intensity: a fraction of the full
# expression, times the person's expressiveness.
INTENSITY_RANGE = (0.9, 1.2)
# In-the-wild nuisance at nuisance=1 (each drawn uniformly up to +-value, scaled by nuisance):
# shift and scale in image half-widths, rotation in degrees, gain/gradient/offset in intensity,
# the share of images with an occluder (none at nuisance <= 0.5), and the noise sigma added to
# NOISE_FLOOR.
WILD = {"shift_x": 0.12, "shift_y": 0.08, "scale": 0.08, "rotation_deg": 10.0, "gain": 0.35,
        "gradient": 0.35, "offset": 0.12, "occlusion": 0.15, "noise": 0.03}
NOISE_FLOOR = 0.01

# Per-image draws (uniform [0, 1) columns), in a fixed order so that output is prefix-stable.
_IMAGE_DRAWS = ("intensity", "centre_x", "centre_y", "scale", "rotation", "gain", "offset",
                "light_angle", "light_strength", "noise", "background", "occlude", "occ_kind",
                "occ_x", "occ_y", "occ_w", "occ_h", "occ_tone", "wrinkle_side")


def render_faces(labels, seed, size: int = IMAGE_SIZE, subject_ids=None,
                 nuisance: float = 1.0, expression_scale=None) -> np.ndarray:
    """Draw one synthetic face per label; returns uint8 [n, size, size] (0 black, 255 white).

    labels: int class ids (contract.data.EMOTIONS order; CONTEMPT for CK+'s contempt).
    seed: an int (or a sequence of ints, as numpy's SeedSequence takes); the same arguments
    always give the same bytes, and face i does not depend on how many faces follow it.
    subject_ids: optional ints; faces sharing an id share an identity (head shape, skin, hair,
    features, glasses) whatever the seed, so subject 5 is the same synthetic person everywhere.
    Without them every face is a new person drawn from the seed.
    nuisance: scales pose, lighting, noise and occlusion (1 = in-the-wild like FER2013; lab
    datasets such as CK+ and JAFFE use about 0.35). Expression intensity is not scaled.
    expression_scale: optional per-face factors on the expression's intensity (0: the person's
    neutral face, 1: as drawn): the frames of a posed sequence from neutral to peak.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class ids, got shape {labels.shape}")
    known = len(_EXPRESSION_TABLE)
    if labels.size and (labels.min() < 0 or labels.max() >= known):
        bad = labels[(labels < 0) | (labels >= known)][0]
        raise ValueError(f"label {bad} is not an expression id in 0..{known - 1} "
                         f"{EMOTIONS + EXTRA_EXPRESSIONS}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    n = labels.size
    param_ss, expression_ss, texture_ss, noise_ss, identity_ss = np.random.SeedSequence(seed).spawn(5)
    draws = np.random.Generator(np.random.PCG64(param_ss)).random((n, len(_IMAGE_DRAWS)),
                                                                  dtype=np.float32)
    if subject_ids is None:
        identity_u = np.random.Generator(np.random.PCG64(identity_ss)).random(
            (n, len(_IDENTITY_NAMES)), dtype=np.float32)
    else:
        subject_ids = np.asarray(subject_ids)
        if subject_ids.shape != labels.shape:
            raise ValueError(f"subject_ids has shape {subject_ids.shape}, labels {labels.shape}")
        identity_u = _subject_identities(subject_ids)
    expression_u = np.random.Generator(np.random.PCG64(expression_ss)).standard_normal(
        (n, len(_EXPRESSION_PARAMS)), dtype=np.float32)
    texture = np.random.Generator(np.random.PCG64(texture_ss)).random(
        (n, _TEXTURE_CELLS, _TEXTURE_CELLS), dtype=np.float32)
    noise_rng = np.random.Generator(np.random.PCG64(noise_ss))  # drawn in face order, chunk by chunk

    render_size = min(size, MAX_RENDER_SIZE)
    chunk = max(1, _CHUNK_PIXELS // (render_size * render_size))
    out = np.empty((n, size, size), dtype=np.uint8)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        faces = _draw(labels[start:stop].astype(np.int64), draws[start:stop],
                      identity_u[start:stop], expression_u[start:stop], texture[start:stop],
                      noise_rng, render_size, float(nuisance),
                      None if expression_scale is None else np.asarray(expression_scale, np.float32)[start:stop])
        if render_size != size:
            faces = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC))
                              for f in faces])
        out[start:stop] = faces
    return out


def _subject_identities(subject_ids: np.ndarray) -> np.ndarray:
    """Uniform identity draws per subject, keyed only by the subject id."""
    unique, inverse = np.unique(subject_ids.astype(np.int64), return_inverse=True)
    rows = np.stack([
        np.random.Generator(np.random.PCG64([_SUBJECT_STREAM, int(sid) & 0xFFFFFFFF,
                                             (int(sid) >> 32) & 0xFFFFFFFF])).random(
            len(_IDENTITY_NAMES), dtype=np.float32)
        for sid in unique]) if unique.size else np.empty((0, len(_IDENTITY_NAMES)), np.float32)
    return rows[inverse.reshape(-1)]


def _cols(matrix: np.ndarray, names) -> dict:
    """Column views of a [n, k] matrix as [n, 1, 1] arrays that broadcast over an image."""
    return {name: matrix[:, i, None, None] for i, name in enumerate(names)}


def _smooth(distance, pixel):
    """Coverage (0..1) of a shape from its signed distance: anti-aliased over one pixel."""
    return np.minimum(np.maximum(0.5 - distance * (1.0 / pixel), 0.0), 1.0)


def _over(image, tone, alpha):
    """Paint `tone` over `image` with coverage `alpha` (in place; image may be a view)."""
    image += alpha * (tone - image)


class _FaceFrame:
    """The canonical face frame, sampled on a grid: faces are drawn here, then posed.

    u runs left to right, v top to bottom, in face units (the head's half-height is ~1). Each
    feature is drawn only inside its window (a fixed slice of the grid that holds it for every
    identity and expression), which is what makes rendering fast.
    """
    U_RANGE, V_RANGE = (-1.0, 1.0), (-1.25, 1.2)
    WINDOWS = {  # name: (v_low, v_high, u_low, u_high), in face units
        "eyes": (-0.66, 0.06, -0.64, 0.64),   # brows, eyes, glasses
        "nose": (-0.22, 0.38, -0.16, 0.16),   # ridge, nostrils, wrinkles
        "folds": (0.04, 0.66, -0.64, 0.64),
        "mouth": (0.14, 0.95, -0.52, 0.52),
    }

    def __init__(self, size):
        self.pixel = 0.04 * IMAGE_SIZE / size  # a little finer than an output pixel
        self.nu = int(np.ceil((self.U_RANGE[1] - self.U_RANGE[0]) / self.pixel))
        self.nv = int(np.ceil((self.V_RANGE[1] - self.V_RANGE[0]) / self.pixel))
        self.u = self._centres(self.nu, self.U_RANGE[0])[None, None, :]
        self.v = self._centres(self.nv, self.V_RANGE[0])[None, :, None]
        self.windows = {}
        for name, (v0, v1, u0, u1) in self.WINDOWS.items():
            rows = self._slice(v0, v1, self.V_RANGE[0])
            cols = self._slice(u0, u1, self.U_RANGE[0])
            self.windows[name] = (rows, cols, self.u[:, :, cols], self.v[:, rows, :])

    def _centres(self, count, origin):
        return origin + (np.arange(count, dtype=np.float32) + 0.5) * np.float32(self.pixel)

    def _slice(self, low, high, origin):
        return slice(int((low - origin) / self.pixel), int(np.ceil((high - origin) / self.pixel)))

    def window(self, layer, name):
        """(view of layer, u, v) for a feature window."""
        rows, cols, u, v = self.windows[name]
        return layer[:, rows, cols], u, v


@functools.lru_cache(maxsize=8)
def _face_frame(size):
    return _FaceFrame(size)


def _draw(labels, draws, identity_u, expression_u, texture, noise_rng, size, nuisance, expression_scale=None):
    """Render one chunk: draw each face in the face frame, pose it, light it, add noise."""
    d = _cols(draws, _IMAGE_DRAWS)
    ident = _cols(_IDENTITY_LOW + identity_u * (_IDENTITY_HIGH - _IDENTITY_LOW), _IDENTITY_NAMES)
    glasses = np.flatnonzero(identity_u[:, _IDENTITY_NAMES.index("glasses")] < GLASSES_SHARE)

    # Expression: neutral + intensity * (target - neutral) + jitter, scaled by the person.
    low, high = INTENSITY_RANGE
    intensity = (low + (high - low) * d["intensity"][:, 0, 0]) * ident["expressiveness"][:, 0, 0]
    jitter = expression_u * _EXPRESSION_JITTER
    if expression_scale is not None:
        intensity = intensity * expression_scale
        jitter = jitter * expression_scale[:, None]  # a neutral frame is the person's own neutral face
    target = _EXPRESSION_TABLE[labels]
    expr = _NEUTRAL + intensity[:, None] * (target - _NEUTRAL) + jitter
    expr = np.clip(expr, _EXPRESSION_LOW, _EXPRESSION_HIGH)  # keeps features inside their windows
    face, coverage = _draw_face(ident, _cols(expr, _EXPRESSION_PARAMS), d, glasses,
                                _face_frame(size))
    return _pose_and_light(face, coverage, ident, d, texture, noise_rng, size, nuisance)


def _draw_face(ident, e, d, glasses, frame):
    """The face in its own frame: [n, nv, nu] intensities and head coverage (0 outside)."""
    px = frame.pixel
    u, v = frame.u, frame.v
    skin = ident["skin"]
    dark = 0.06 + 0.1 * skin  # pupils, brows, the inside of the mouth

    # Head with soft shading towards its rim, and hair above a per-person hairline.
    r2 = (u / ident["face_w"]) ** 2 + (v / ident["face_h"]) ** 2
    face = skin * (1.0 - 0.18 * np.minimum(r2, 1.0))
    coverage = _smooth((np.sqrt(r2) - 1.0) * ident["face_w"], px)
    hair_outline = np.sqrt((u / (ident["face_w"] + 0.10)) ** 2
                           + ((v + 0.08) / (ident["face_h"] + 0.08)) ** 2) - 1.0
    hairline = ident["hairline"] + 3.6 * ident["hair_side"] * (u / ident["face_w"]) ** 2
    hair = _smooth(np.maximum(hair_outline * ident["face_w"], v - hairline), px)
    _over(face, ident["hair"], hair)
    np.maximum(coverage, hair, out=coverage)

    # Eyes (mirrored: |u|): white, iris, outline; eye_open sets the lid opening.
    f, wu, wv = frame.window(face, "eyes")
    eu, ev = np.abs(wu) - ident["eye_x"], wv - ident["eye_y"]
    eye_h = ident["eye_h"] * e["eye_open"]
    eye = (np.sqrt((eu / ident["eye_w"]) ** 2 + (ev / eye_h) ** 2) - 1.0) * np.minimum(ident["eye_w"], eye_h)
    _over(f, np.minimum(skin + 0.25, 0.95), _smooth(eye, px))
    iris = np.maximum(np.sqrt(eu * eu + ev * ev) - ident["eye_h"] * 1.05, eye)
    _over(f, ident["iris"] * 0.5 + 0.05, _smooth(iris, px))
    _over(f, dark, 0.8 * _smooth(np.abs(eye) - 0.25 * px, px))

    # Brows: a thick curve above each eye; brow_tilt lowers (frown) or raises (worry) the inner
    # end, brow_arch bends it (surprise).
    t = eu / ident["brow_len"]  # + towards the outer end
    centre = ident["eye_y"] - ident["brow_gap"] + e["brow_y"]
    curve = centre - e["brow_tilt"] * 0.5 * t + (e["brow_arch"] + 0.01) * (t * t - 0.33)
    brow = np.maximum(np.abs(wv - curve) - ident["brow_thick"] * (1.0 - 0.3 * t),
                      np.abs(eu) - ident["brow_len"])
    _over(f, np.minimum(ident["hair"], 0.45 * skin), 0.9 * _smooth(brow, px))  # darker than skin

    if glasses.size:  # rims and bridge, drawn only on the faces of people who wear glasses
        lens_w = ident["eye_w"][glasses] * 1.6
        rim = np.abs(np.sqrt((eu[glasses] / lens_w) ** 2 + (ev[glasses] / 0.13) ** 2) - 1.0) * 0.13
        bridge = np.maximum(np.abs(ev[glasses] + 0.02) - 0.012,
                            np.abs(wu) - (ident["eye_x"][glasses] - lens_w))
        with_glasses = f[glasses]
        _over(with_glasses, 0.1, _smooth(np.minimum(rim - 0.012, bridge), px))
        f[glasses] = with_glasses

    # Nose: a soft ridge shadow and nostrils; disgust wrinkles its bridge.
    f, wu, wv = frame.window(face, "nose")
    tip = ident["eye_y"] + ident["nose_len"] + 0.08
    ridge = np.maximum(np.abs(wu + 0.04) - 0.015,
                       np.abs(wv - (ident["eye_y"] + tip) / 2) - ident["nose_len"] / 2)
    _over(f, skin * 0.75, 0.5 * _smooth(ridge, px))
    nostril = (np.sqrt(((np.abs(wu) - 0.07) / 0.04) ** 2 + ((wv - tip) / 0.022) ** 2) - 1.0) * 0.022
    _over(f, dark + 0.1, 0.85 * _smooth(nostril, px))
    wrinkle = e["wrinkle"]
    creases = np.abs(wv - ident["eye_y"] - 0.07 - 0.25 * wu * wu)
    for k in range(3):
        crease = np.maximum(np.abs(creases - 0.045 * k) - 0.011, np.abs(wu) - 0.085)
        _over(f, skin * 0.45, 0.8 * wrinkle * _smooth(crease, px))

    # Nasolabial folds (mirrored): arcs from the nose wings towards the mouth corners.
    f, wu, wv = frame.window(face, "folds")
    mouth_w = ident["mouth_w"] * e["mouth_width"]
    span = ident["mouth_y"] + 0.05 - tip
    along = np.minimum(np.maximum((wv - tip + 0.02) / span, 0.0), 1.0)
    fold = np.maximum(np.abs(np.abs(wu) - 0.12 - (mouth_w - 0.05) * along ** 0.7 - 0.02) - 0.012,
                      np.abs(wv - tip - span / 2) - span / 2)
    _over(f, skin * 0.55, 0.8 * e["folds"] * _smooth(fold, px))

    # Mouth: a lip band around a mid-line whose corners rise (smile) or fall; it opens around
    # the mid-line (round when narrow: surprise); disgust lifts the upper lip on one side,
    # contempt one corner.
    f, wu, wv = frame.window(face, "mouth")
    xm = wu / mouth_w
    inside = np.sqrt(np.maximum(1.0 - xm * xm, 0.0))
    side = np.where(d["wrinkle_side"] < 0.5, -1.0, 1.0).astype(np.float32)
    mid = (ident["mouth_y"] - (e["mouth_curve"] + ident["resting_curve"]) * (xm * xm - 0.35)
           + 0.02 * wrinkle * side * xm - e["smirk"] * np.maximum(side * xm, 0.0) ** 2)
    opening = e["mouth_open"] * inside
    upper = mid - opening - 0.05 * wrinkle * np.minimum(np.maximum(side * xm + 0.2, 0.0), 1.0) * inside
    lower = mid + 1.3 * opening
    band = np.maximum(np.maximum(upper - wv, wv - lower), (np.abs(xm) - 1.0) * mouth_w)
    _over(f, skin * ident["lip_tone"], _smooth(band - ident["lip_thick"], px))
    _over(f, dark, _smooth(band, px))
    teeth = np.maximum(band, wv - 0.5 * (upper + lower))
    _over(f, 0.85, (e["teeth"] * (e["mouth_open"] > 0.015)) * _smooth(teeth, px))
    return face, coverage


def _pose_and_light(face, coverage, ident, d, texture, noise_rng, size, nuisance):
    """Place each face in the image (shift, scale, in-plane rotation) over a textured
    background, then apply lighting, occlusion and sensor noise; returns uint8 [n, size, size]."""
    n, nv, nu = face.shape
    frame = _face_frame(size)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0  # image units, [-1, 1]
    x, y = grid[None, None, :], grid[None, :, None]
    w = {k: nuisance * v for k, v in WILD.items()}
    scale = 0.80 - w["scale"] * (d["scale"] * 2.0 - 1.0)  # head half-height / image half-size
    angle = np.deg2rad(w["rotation_deg"] * (d["rotation"] * 2.0 - 1.0))
    cx = w["shift_x"] * (d["centre_x"] * 2.0 - 1.0)
    cy = 0.06 + w["shift_y"] * (d["centre_y"] * 2.0 - 1.0)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    u = cos * (x - cx) + sin * (y - cy)
    v = cos * (y - cy) - sin * (x - cx)

    # Bilinear lookup of (face, coverage) at (u, v); outside the frame coverage is 0.
    gu = np.minimum(np.maximum((u - frame.U_RANGE[0]) / frame.pixel - 0.5, 0.0), nu - 1.001)
    gv = np.minimum(np.maximum((v - frame.V_RANGE[0]) / frame.pixel - 0.5, 0.0), nv - 1.001)
    iu, iv = gu.astype(np.intp), gv.astype(np.intp)
    fu, fv = gu - iu, gv - iv
    corners = {0: (1.0 - fu) * (1.0 - fv), 1: fu * (1.0 - fv), nu: (1.0 - fu) * fv, nu + 1: fu * fv}
    index = (np.arange(n, dtype=np.intp)[:, None, None] * nv + iv) * nu + iu
    face_at, coverage_at = 0.0, 0.0
    for offset, weight in corners.items():
        corner = index + offset
        face_at = face_at + weight * np.take(face.reshape(-1), corner)
        coverage_at = coverage_at + weight * np.take(coverage.reshape(-1), corner)

    # Background with a low-frequency texture, the neck, then the face over them.
    image = (0.15 + 0.7 * d["background"]) + 0.12 * _upsample(texture * 2.0 - 1.0, size)
    neck = np.maximum(np.abs(u) - 0.58 * ident["face_w"], 0.6 - v)
    _over(image, ident["skin"] * 0.85, _smooth(neck, 2.0 / size / scale))
    _over(image, face_at, coverage_at)

    # Lighting: gain, offset and a directional gradient across the image.
    light = w["gradient"] * d["light_strength"]
    phi = 2.0 * np.pi * d["light_angle"]
    gain = 1.0 + w["gain"] * (d["gain"] * 2.0 - 1.0)
    image *= gain * (1.0 + light * (np.cos(phi) * x + np.sin(phi) * y))
    image += w["offset"] * (d["offset"] * 2.0 - 1.0)

    # Occlusion (a hand, a strand of hair, a watermark): a bar or a patch, on some images.
    # Occluders are an in-the-wild thing: none at nuisance <= 0.5 (posed lab sets, renders).
    share = WILD["occlusion"] * max(0.0, 2.0 * nuisance - 1.0)
    occluded = np.flatnonzero(d["occlude"][:, 0, 0] < share)
    if occluded.size:
        o = {k: d[k][occluded] for k in ("occ_kind", "occ_x", "occ_y", "occ_w", "occ_h", "occ_tone")}
        bar = o["occ_kind"] < 0.5
        ox, oy = o["occ_x"] * 2.0 - 1.0, o["occ_y"] * 2.0 - 1.0
        half_w = np.where(bar, 0.06 + 0.06 * o["occ_w"], 0.12 + 0.18 * o["occ_w"])
        half_h = np.where(bar, 3.0, 0.12 + 0.18 * o["occ_h"])
        bar_angle = np.where(bar, np.pi * o["occ_h"], 0.0)  # bars run in any direction
        along = np.cos(bar_angle) * (x - ox) + np.sin(bar_angle) * (y - oy)
        across = np.cos(bar_angle) * (y - oy) - np.sin(bar_angle) * (x - ox)
        patch = np.maximum(np.abs(along) - half_w, np.abs(across) - half_h)
        part = image[occluded]
        _over(part, 0.1 + 0.8 * o["occ_tone"], _smooth(patch, 2.0 / size))
        image[occluded] = part

    sigma = NOISE_FLOOR + w["noise"] * d["noise"]
    image += sigma * noise_rng.standard_normal((n, size, size), dtype=np.float32)
    image *= 255.0
    image += 0.5
    return np.minimum(np.maximum(image, 0.0, out=image), 255.0, out=image).astype(np.uint8)


def _upsample(coarse, size):
    """Bilinear upsampling of [n, cells, cells] grids to [n, size, size]: a smooth texture."""
    cells = coarse.shape[1]
    pos = (np.arange(size, dtype=np.float32) + 0.5) / size * (cells - 1)
    i0 = np.minimum(pos.astype(np.int64), cells - 2)
    f = pos - i0.astype(np.float32)
    rows = coarse[:, i0, :] * (1 - f)[None, :, None] + coarse[:, i0 + 1, :] * f[None, :, None]
    return rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i0 + 1] * f[None, None, :]
