"""serving_images' budgets where they leaked: every frame of a GIF counts (its image descriptors,
found by walking its blocks in the graph, not its logical screen alone), the byte budget holds per
request, and an empty request gets empty answers from both signatures.

The GIFs are crafted byte strings: a frame's descriptor can claim 16000x16000 over a few bytes of
LZW data, since the budget refuses it before anything is decoded. What TF's GIF decoder does that
the walk relies on (the image it makes, how it reads an empty extension) is tested here too. The
served module is built from an untrained model and a stand-in for the Transform output (a fixed
z-score: the budgets do not depend on it); the export's own graph functions and a saved and
reloaded copy are what is called.
"""
import io
import random
import struct
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, PngImagePlugin

from contract import data as dc
from trainer import export
from trainer import model as deep_emotion_model
from trainer.preprocessing import IMAGE_KEY

PIXEL_BUDGET = dc.MAX_IMAGE_PIXELS  # 16,000,000: the default
BYTE_BUDGET = 128 * 1024  # small, so that requests over it are small too
REFUSED_FAST = 0.1  # seconds: a refusal from the headers


class _ZScore(tf.Module):
    """Stands in for the Transform graph's layer: pixels -> the model's normalised image."""

    def __call__(self, features):
        pixels = tf.cast(features[dc.PIXELS], tf.float32)
        return {IMAGE_KEY: tf.reshape((pixels - 128.0) / 64.0, [-1, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 1])}


class _TransformOutput:
    def transform_features_layer(self):
        return _ZScore()

    def raw_feature_spec(self):
        return {dc.PIXELS: tf.io.FixedLenFeature([dc.NUM_PIXELS], tf.int64)}


@pytest.fixture(scope="module")
def served():
    model = deep_emotion_model.build_model("paper", seed=0, mixed_precision=False)
    module = export.ServingModule(model, _TransformOutput(), max_image_pixels=PIXEL_BUDGET,
                                  max_image_bytes=BYTE_BUDGET)
    module.serve_images(tf.constant([_png(_face())]))  # traced and warm
    return module


def _face(seed=0, size=48):
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def _png(pixels, padding=0):
    info = PngImagePlugin.PngInfo()
    if padding:
        info.add_text("padding", "x" * padding)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _gif_file(frames, **options):
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=len(frames) > 1, append_images=frames[1:], **options)
    return buffer.getvalue()


# Crafted GIFs: header, logical screen (no global colour table), blocks, trailer.
_LZW = b"\x02\x02\x4c\x01\x00"  # minimum code size 2; one sub-block; the data's end (no real pixels)
_CONTROL = b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control extension


def _screen(width, height):
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)


def _image(width, height, left=0, top=0):
    return b"\x2c" + struct.pack("<HHHHB", left, top, width, height, 0) + _LZW


def _crafted(screen, *frames, blocks=b""):
    return _screen(*screen) + blocks + b"".join(_CONTROL + _image(*frame) for frame in frames) + b"\x3b"


def _message(error):
    return " ".join(line for line in str(error).splitlines() if "refused" in line)


def _refused(serve, batch, match):
    """Seconds to the refusal: InvalidArgument whose "refused" line holds `match` (the budget named)."""
    started = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError) as refused:
        serve(tf.constant(batch))
    seconds = time.perf_counter() - started
    assert match in _message(refused.value), _message(refused.value) or str(refused.value)[:500]
    return seconds


PIXELS_REFUSED = f"pixel budget of {PIXEL_BUDGET:,} pixels"


# An empty comment extension, then what the GIF spec reads as the trailer; giflib reads on past
# the extension's 0 (0x3B: a sub-block of 59 bytes, then a 0) and finds the frame after it.
_SPEC_HIDES = b"\x21\xfe\x00" + b"\x3b" + b"x" * 59 + b"\x00"


@pytest.mark.parametrize("gif", [
    _crafted((8, 8), (16000, 16000)),  # the screen says 8x8, the frame 16000x16000
    _crafted((8, 8), (4001, 4000)),  # a frame just over the budget in a tiny screen
    _crafted((4000, 4000), (4000, 4000), (4000, 4000)),  # two frames at the budget: twice it
    _crafted((1000, 1000), *[(1000, 1000)] * 17),  # 17 frames of 1 Mpixel
    _crafted((4000, 4000), *[(4000, 4000)] * 160),  # the review's 160 frames
    _crafted((8, 8), (4001, 1), (1, 4000)),  # decoded as wide as the widest, as tall as the tallest
], ids=["frame-beyond-its-screen", "frame-just-over", "two-frames-at-the-budget", "17-frames", "160-frames",
        "crossed-frames"])
def test_a_gif_whose_frames_exceed_the_pixel_budget_is_refused_before_decoding(served, gif):
    assert len(gif) < 4000
    seconds = _refused(served.serve_images, [gif], PIXELS_REFUSED)
    assert seconds < REFUSED_FAST, seconds


@pytest.mark.parametrize("gif", [
    _crafted((8, 8), (8, 8))[:-1],  # no trailer
    _crafted((8, 8), (8, 8))[:-3],  # the last sub-block runs past the end
    _screen(8, 8) + _image(8, 8)[:6],  # an image descriptor cut short
    _crafted((8, 8), (8, 8), blocks=b"\x99\x01\x00"),  # an unknown block
    _crafted((8, 8), (8, 8))[:-1] + b"\x00" * 32,  # zeros where the trailer belongs
    b"GIF89a\x08\x00\x08\x00\x87\x00\x00" + b"\0" * 100,  # a global colour table longer than the file
    b"GIF89a",  # a header, no screen
    _crafted((8, 8), (8, 8), blocks=b"\x21\xfe\x00"),  # an extension of no sub-block
    _screen(8, 8) + _SPEC_HIDES + _image(16000, 16000) + b"\x3b",  # ... hiding a frame from the spec
], ids=["no-trailer", "sub-block-past-the-end", "descriptor-cut-short", "unknown-block", "zeros-for-trailer",
        "colour-table-past-the-end", "header-only", "empty-extension", "frame-hidden-by-an-empty-extension"])
def test_a_gif_whose_blocks_cannot_be_walked_is_refused(served, gif):
    seconds = _refused(served.serve_images, [gif], "block structure is malformed or runs past its end")
    assert seconds < REFUSED_FAST, seconds


def _pillow_frame(width, height, value=90):
    """(header and colour table, image block) of Pillow's GIF of one grey frame."""
    gif = _gif_file([Image.new("L", (width, height), value)])
    colour_table_end = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    assert gif[colour_table_end] == 0x2C and gif[-1] == 0x3B
    return gif[:colour_table_end], gif[colour_table_end:-1]


def test_what_tf_decodes_of_a_gif_is_what_the_walk_counts():
    head, frame = _pillow_frame(40, 30)
    tiny_screen = head[:6] + struct.pack("<HH", 8, 8) + head[10:]
    # The image made is as wide as the widest frame and as tall as the tallest, whatever the screen
    # (one frame of them with expand_animations=False, but all of them decoded first).
    _, wide = _pillow_frame(40, 1)
    _, tall = _pillow_frame(1, 30)
    crossed = tiny_screen + wide + tall + b"\x3b"
    assert tuple(tf.io.decode_image(crossed, channels=3, expand_animations=False).shape) == (30, 40, 3)
    assert tuple(tf.io.decode_gif(tiny_screen + frame + b"\x3b").shape) == (1, 30, 40, 3)
    assert int(export.gif_pixels(tf.constant(crossed), PIXEL_BUDGET)[0]) == 40 * 30
    # giflib reads on past an empty extension's 0: it decodes the frame the spec's reading never
    # reaches (the GIF spec ends at the 0x3B). If this fails, TF's decoder changed: see gif_pixels.
    hidden = tiny_screen + _SPEC_HIDES + frame + b"\x3b"
    assert tuple(tf.io.decode_gif(hidden).shape) == (1, 30, 40, 3)
    assert int(export.gif_pixels(tf.constant(hidden), PIXEL_BUDGET)[1]) == export.GIF_MALFORMED


def test_a_gif_of_more_blocks_than_the_walk_takes_is_refused_in_bounded_time(served):
    # One-byte extensions (5 bytes: a step each) and sub-blocks of changing sizes (a step each)
    # are what a walk can be made to take longest over; the step cap bounds it.
    steps = export.GIF_MAX_STEPS
    short_blocks = _crafted((8, 8), (8, 8), blocks=b"\x21\xfe\x01a\x00" * steps)
    changing_sizes = _crafted((8, 8), (8, 8), blocks=b"\x21\xfe" + b"\x01a\x02bb" * (steps // 2 + 1) + b"\x00")
    for gif in (short_blocks, changing_sizes):
        assert len(gif) <= BYTE_BUDGET
        seconds = _refused(served.serve_images, [gif], f"a GIF of more than {steps:,} blocks")
        assert seconds < 5, seconds  # about 0.6 s on 2 shared cores
    # Fewer such blocks are walked to the end, and the GIF answered.
    head, frame = _pillow_frame(48, 48)
    few = head + b"\x21\xfe\x01a\x00" * 2000 + b"\x21\xfe" + b"\x01a\x02bb" * 2000 + b"\x00" + frame + b"\x3b"
    assert served.serve_images(tf.constant([few]))[export.PROBABILITIES].shape == (1, dc.NUM_CLASSES)


def _answers(served, batch):
    return served.serve_images(tf.constant(batch))[export.PROBABILITIES].numpy()


def test_gifs_within_the_budget_are_answered_as_their_first_frame(served):
    faces = [_face(seed) for seed in range(4)]
    still = _gif_file([Image.fromarray(faces[0])])
    # Animated: looping (an application extension), a graphic control extension a frame, frames
    # in colour with their own palettes (local colour tables).
    colour = [Image.fromarray(np.stack([f, 255 - f, f // 2], axis=-1)) for f in faces[1:]]
    animated = _gif_file([Image.fromarray(faces[0]).convert("RGB")] + colour, duration=[100, 50, 80, 40], loop=0,
                         disposal=2)
    commented = still[:13 + 768] + b"\x21\xfe" + b"\x05hello\x03gif\x00" + still[13 + 768:]
    big_still = _gif_file([Image.new("L", (4000, 4000), 90)])  # 16,000,000 pixels in 13 KB
    for gif, pixels in [(still, 48 * 48), (commented, 48 * 48), (animated, _walk(animated, PIXEL_BUDGET)[1]),
                        (big_still, PIXEL_BUDGET)]:  # at the budget: within it
        assert [int(x) for x in export.gif_pixels(tf.constant(gif), PIXEL_BUDGET)] == [pixels, export.GIF_COMPLETE]
    assert 48 * 48 < _walk(animated, PIXEL_BUDGET)[1] <= 4 * 48 * 48 and Image.open(io.BytesIO(animated)).n_frames == 4
    answers = _answers(served, [still, animated, commented])
    np.testing.assert_allclose(answers, _answers(served, [_png(faces[0])] * 3), atol=1e-5)
    assert _answers(served, [big_still]).shape == (1, dc.NUM_CLASSES)


def _walk(data: bytes, max_pixels: int):
    """The GIF walk in Python, block by block: (status, pixels), the graph's statuses."""
    def word(at):
        return data[at] | data[at + 1] << 8 if at + 1 < len(data) else 0

    summed, widest, tallest = 0, word(6), word(8)
    position = 13 + (3 << ((data[10] & 7) + 1) if len(data) > 10 and data[10] & 0x80 else 0)
    while True:
        kind = data[position] if position < len(data) else None
        if kind == 0x3B:
            return export.GIF_COMPLETE, max(summed, widest * tallest)
        if kind == 0x21:
            position += 2
            if position < len(data) and data[position] == 0:  # no sub-block: giflib and the spec disagree
                return export.GIF_MALFORMED, max(summed, widest * tallest)
        elif kind == 0x2C:
            descriptor = data[position:position + 10] + bytes(10)
            width, height = descriptor[5] | descriptor[6] << 8, descriptor[7] | descriptor[8] << 8
            summed, widest, tallest = summed + width * height, max(widest, width), max(tallest, height)
            if max(summed, widest * tallest) > max_pixels:
                return export.GIF_OVER_BUDGET, max(summed, widest * tallest)
            position += 11 + (3 << ((descriptor[9] & 7) + 1) if descriptor[9] & 0x80 else 0)
        else:
            return export.GIF_MALFORMED, max(summed, widest * tallest)
        while position < len(data) and data[position]:
            position += data[position] + 1
        if position >= len(data):
            return export.GIF_MALFORMED, max(summed, widest * tallest)
        position += 1


def test_the_graph_walk_agrees_with_a_python_walk_on_damaged_gifs():
    walk = tf.function(lambda encoded: export.gif_pixels(encoded, PIXEL_BUDGET),
                       input_signature=[tf.TensorSpec([], tf.string)])
    frames = [Image.fromarray(np.stack([_face(s, 24), _face(s + 1, 24), _face(s + 2, 24)], -1)) for s in range(3)]
    seeds = [_gif_file(frames, duration=60, loop=0), _gif_file([Image.fromarray(_face(7, 40))]),
             _crafted((300, 200), (300, 200), (40, 4000), blocks=b"\x21\xfe\x03abc\x01d\x00"),
             _crafted((3000, 3000), (10, 10), (10, 10)), _crafted((8, 8), (4000, 1), (1, 3999))]
    rng = random.Random(0)
    outcomes = set()
    for trial in range(400):
        gif = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            what, at = rng.random(), rng.randrange(len(gif))
            if what < 0.6:
                gif[at] = rng.choice([0, 1, 0x21, 0x2C, 0x3B, 0x80, 0xFF, rng.randrange(256)])
            elif what < 0.8:
                del gif[at:at + rng.randint(1, 8)]
            else:
                gif[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        expected = _walk(bytes(gif), PIXEL_BUDGET)
        pixels, status = walk(bytes(gif))
        got = (int(status), int(pixels))
        if expected[0] == export.GIF_COMPLETE or got[0] == export.GIF_COMPLETE:  # answered: the same pixels
            assert got == expected, (trial, bytes(gif))
        else:  # refused, both: over the budget or malformed (which first may differ on a cut descriptor)
            assert got[0] in (export.GIF_MALFORMED, export.GIF_OVER_BUDGET), (trial, bytes(gif))
        outcomes.add(expected[0])
    assert outcomes == {export.GIF_COMPLETE, export.GIF_MALFORMED, export.GIF_OVER_BUDGET}


def test_the_byte_budget_holds_for_the_request_not_each_image(served):
    images = [_png(_face(seed), padding=48 * 1024) for seed in range(3)]  # each ~51 KB of a 128 KiB budget
    assert all(len(image) < BYTE_BUDGET for image in images) and sum(map(len, images)) > BYTE_BUDGET
    seconds = _refused(served.serve_images, images, f"byte budget of {BYTE_BUDGET:,} bytes")
    assert seconds < REFUSED_FAST, seconds
    assert _answers(served, images[:2]).shape == (2, dc.NUM_CLASSES)
    assert _answers(served, images[2:]).shape == (1, dc.NUM_CLASSES)
    _refused(served.serve_images, [_png(_face(), padding=BYTE_BUDGET)], f"byte budget of {BYTE_BUDGET:,} bytes")


def _assert_empty(outputs):
    shapes = {name: (tuple(value.shape), value.dtype) for name, value in outputs.items()}
    assert shapes == {export.PROBABILITIES: ((0, dc.NUM_CLASSES), tf.float32), export.CLASS_ID: ((0,), tf.int64),
                      export.CLASS_NAME: ((0,), tf.string), export.UNCERTAIN: ((0,), tf.bool)}


def test_an_empty_request_gets_empty_answers_from_both_signatures(served):
    _assert_empty(served.serve_images(tf.constant([], tf.string)))
    _assert_empty(served.serve_examples(tf.constant([], tf.string)))
    assert tuple(served.transform_features(tf.constant([], tf.string))[IMAGE_KEY].shape) == (
        0, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 1)
    # ... and a request of one is answered as before
    assert served.serve_images(tf.constant([_png(_face())]))[export.CLASS_ID].shape == (1,)


def test_the_saved_model_keeps_the_budgets_as_tf_serving_loads_it(served, tmp_path):
    served.save(str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    images, examples = loaded.signatures["serving_images"], loaded.signatures["serving_default"]
    _assert_empty(images(image_bytes=tf.constant([], tf.string)))
    _assert_empty(examples(examples=tf.constant([], tf.string)))
    serve = lambda batch: images(image_bytes=batch)  # noqa: E731
    still = _gif_file([Image.fromarray(_face())])
    assert serve(tf.constant([still, still]))[export.PROBABILITIES].shape == (2, dc.NUM_CLASSES)  # and warm
    assert _refused(serve, [still, _crafted((8, 8), (16000, 16000))], PIXELS_REFUSED) < REFUSED_FAST
    assert _refused(serve, [_crafted((8, 8), (8, 8))[:-1]], "malformed") < REFUSED_FAST
    _refused(serve, [_png(_face(seed), padding=48 * 1024) for seed in range(3)], f"byte budget of {BYTE_BUDGET:,}")


def _png_header_claiming(width, height):
    """A PNG's signature and IHDR chunk: what the budget reads; no image data follows."""
    import zlib  # pylint: disable=import-outside-toplevel

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))


def test_a_request_whose_images_claim_too_many_pixels_together_is_refused_before_decoding():
    """Each image under the budget, together over REQUEST_IMAGES_AT_BUDGET times it: 25 PNGs of
    4000x4000 in 390 KB took 5.5 s and 1.1 GB to decode; refused from their headers."""
    budget = 1_000_000
    big = _png_header_claiming(1000, 1000)
    images = tf.constant([big] * (export.REQUEST_IMAGES_AT_BUDGET + 1))
    started = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"request refused: its images claim more than "
                                                             r"4,000,000 pixels together \(4 times the image pixel "
                                                             r"budget of 1,000,000"):
        export.checked_images(images, budget, 10 * 2 ** 20)
    assert time.perf_counter() - started < 1.0
    assert export.checked_images(tf.constant([big] * export.REQUEST_IMAGES_AT_BUDGET), budget,
                                 10 * 2 ** 20).shape == [export.REQUEST_IMAGES_AT_BUDGET]
