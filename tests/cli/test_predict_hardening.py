"""`deep-emotion predict` on the inputs people really have and attackers send: every input gets its
own JSON line, an unreadable one an "error" line and the rest go on, the exit status is 1 exactly
when an error line was printed, and the budgets bound what an untrusted file costs.

The model is a stand-in with the served model's two signatures, whose answer is a function of the
48x48 gray picture it was given (the mean of 7 horizontal bands), so a picture sent sideways gets
another answer; the face stage is the real one."""
import fractions
import io
import json
import os
import struct
import threading
import zlib

import av
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image
from skimage import data

from contract import data as dc
from deep_emotion import predict
from deep_emotion.cli.predict import command
from faces import detect, gray, video

# Where the astronaut's face is in skimage.data.astronaut() (tests/faces/test_detect.py).
ASTRONAUT_FACE = (172, 62, 108, 118)


class _BandModel(tf.Module):
    """serving_default and serving_images, answering the mean gray level of 7 horizontal bands of the
    48x48 picture, normalised: upright and sideways pictures get different answers."""

    @staticmethod
    def _answer(pixels):  # float [B, 48, 48]
        bands = tf.stack([tf.reduce_mean(pixels[:, 7 * i:7 * i + 7, :], axis=[1, 2]) for i in range(7)], axis=1) + 1.0
        probabilities = bands / tf.reduce_sum(bands, axis=1, keepdims=True)
        class_id = tf.argmax(probabilities, axis=1)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(tf.constant(dc.EMOTIONS), class_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, {dc.PIXELS: tf.io.FixedLenFeature([dc.NUM_PIXELS], tf.int64)})
        return self._answer(tf.reshape(tf.cast(parsed[dc.PIXELS], tf.float32), [-1, dc.IMAGE_SIZE, dc.IMAGE_SIZE]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_images(self, image_bytes):
        def decode(encoded):  # as the served model decodes (trainer/export.py)
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            small = tf.image.resize(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32)),
                                    [dc.IMAGE_SIZE, dc.IMAGE_SIZE], antialias=True)
            return tf.reshape(small, [dc.IMAGE_SIZE, dc.IMAGE_SIZE])

        return self._answer(tf.map_fn(decode, image_bytes, fn_output_signature=tf.float32))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model"))
    module = _BandModel()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve_examples,
                                                  "serving_images": module.serve_images})
    return path


def _predict(model_dir, *args):
    """(exit code, answer lines, stderr) of `deep-emotion predict --model model_dir args...`."""
    result = CliRunner().invoke(command, ["--model", model_dir, *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def _astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def _crop48(path, mode="L"):
    """A 48x48 image, darker at the top (the band model's answer says which way up it was sent)."""
    ramp = np.repeat(np.linspace(20, 230, 48, dtype=np.float32)[:, None], 48, axis=1)
    Image.fromarray(ramp.astype(np.uint8)).convert(mode).save(path)
    return path


def _inputs(tmp_path, middle):
    """[a 48x48 crop, middle, another crop]: the lines around a bad input must still come."""
    return [_crop48(tmp_path / "before.png"), middle, _crop48(tmp_path / "after.png")]


def _assert_error_between(lines, code, middle, says):
    assert code == 1
    assert len(lines) == 3 and lines[1]["input"] == str(middle)
    assert "error" not in lines[0] and "error" not in lines[2]
    assert says in lines[1]["error"], lines[1]["error"]


# 1. Containers that do not declare their frame count (mkv, webm) ------------------------------

def test_an_mkv_video_without_a_declared_frame_count_is_answered_frame_by_frame(model_dir, tmp_path):
    clip = video.write_video(str(tmp_path / "clip.mkv"), [np.full((48, 64), 90, np.uint8)] * 3)
    assert video.frame_count(clip) == 0  # Matroska does not say
    code, lines, _ = _predict(model_dir, clip, _crop48(tmp_path / "crop.png"))
    assert code == 0
    assert [line.get("frame") for line in lines] == [0, 1, 2, None]


# 2. Videos that cannot be read ---------------------------------------------------------------

def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        for _ in range(3):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _no_frames(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        container.start_encoding()  # the header, and no frame


@pytest.mark.parametrize("kind", ["audio_only.mp4", "no_frames.mp4", "empty.mp4", "corrupt_header.mp4",
                                  "header_only.mkv"])
def test_a_video_that_cannot_be_read_gets_an_error_line_and_the_rest_go_on(model_dir, tmp_path, kind):
    path = tmp_path / kind
    if kind == "audio_only.mp4":
        _audio_only(path)
    elif kind == "no_frames.mp4":
        _no_frames(path)
    elif kind == "empty.mp4":
        path.write_bytes(b"")
    else:
        clip = video.write_video(str(tmp_path / f"clip{path.suffix}"), [np.full((48, 64), 90, np.uint8)] * 3)
        encoded = open(clip, "rb").read()
        if kind == "corrupt_header.mp4":
            path.write_bytes(b"\0" * 64 + encoded[64:])
        else:  # a video stream, and the file cut where its first cluster of frames begins
            path.write_bytes(encoded[:encoded.find(b"\x1f\x43\xb6\x75") + 8])
    assert video.frame_count(str(path)) == 0
    code, lines, _ = _predict(model_dir, *_inputs(tmp_path, path))
    _assert_error_between(lines, code, path, str(path))


def test_a_video_cut_short_is_answered_up_to_the_cut_then_says_so(model_dir, tmp_path):
    """An avi cut in half decodes without an FFmpeg error: the frames that are there are answered,
    and the input's last line says the video ends before the frames its header declares."""
    frames = list(np.random.default_rng(0).integers(0, 256, (40, 48, 64), dtype=np.uint8))  # no two alike
    whole = open(video.write_video(str(tmp_path / "whole.avi"), frames), "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[:len(whole) // 2])
    assert video.frame_count(str(cut)) == 40
    code, lines, _ = _predict(model_dir, _crop48(tmp_path / "before.png"), cut, _crop48(tmp_path / "after.png"))
    assert code == 1
    answered = [line for line in lines if line["input"] == str(cut) and "frame" in line]
    assert 5 < len(answered) < 40 and [line["frame"] for line in answered] == list(range(len(answered)))
    error = next(line for line in lines if line["input"] == str(cut) and "error" in line)
    assert f"ends after frame {len(answered)} of the 40" in error["error"] and "cut short" in error["error"]
    assert "error" not in lines[0] and "error" not in lines[-1]


def test_a_whole_video_is_not_taken_for_a_cut_one(tmp_path):
    for suffix in (".avi", ".mp4"):
        clip = video.write_video(str(tmp_path / f"whole{suffix}"), [np.full((48, 64), 90, np.uint8)] * 30)
        assert len(list(video.read_frames(clip))) == 30 == video.frame_count(clip)
    # An avi whose capture dropped frames: the muxer writes an empty chunk for each gap and counts it,
    # so it declares 109 frames and shows 100, over its whole duration.
    gaps = str(tmp_path / "gaps.avi")
    with av.open(gaps, "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        time = 0
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64), i, np.uint8), format="gray").reformat(format="yuvj420p")
            frame.pts, frame.time_base = time, fractions.Fraction(1, 25)
            time += 2 if i % 10 == 9 else 1
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert video.frame_count(gaps) > 100 + video.CUT_SHORT_TOLERANCE
    assert len(list(video.read_frames(gaps))) == 100


# 3. EXIF orientation --------------------------------------------------------------------------

def _with_orientation(image: Image.Image, orientation: int, path) -> str:
    """The pixels a phone stores for `image` seen upright, and the tag that says how to turn them."""
    stored = image.rotate({6: 90, 8: -90, 3: 180}[orientation], expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif.tobytes(), quality=95)
    return str(path)


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_phone_photo_with_an_exif_orientation_is_analysed_as_it_is_shown(model_dir, tmp_path, orientation):
    photo = _with_orientation(_astronaut(), orientation, tmp_path / "phone.jpg")
    code, [line], _ = _predict(model_dir, photo)
    assert code == 0 and line["faces"] == 1
    assert detect.iou(line["box"], ASTRONAUT_FACE) > 0.6  # in the upright picture's pixels
    (_, left_y), (_, right_y) = line["eyes"]
    assert abs(left_y - right_y) < 6  # eyes level: not analysed sideways


def test_a_crop_with_an_exif_orientation_goes_to_serving_images_upright(model_dir, tmp_path):
    upright = Image.open(_crop48(tmp_path / "upright.png"))
    sideways = _with_orientation(upright, 6, tmp_path / "sideways.jpg")
    code, [expected, answer], _ = _predict(model_dir, "--no-detect", tmp_path / "upright.png", sideways)
    assert code == 0
    assert max(abs(answer["probabilities"][e] - expected["probabilities"][e]) for e in dc.EMOTIONS) < 0.005


# 4. and 8. Gray levels of 16-bit, float and CMYK images ------------------------------------------

def test_to_gray_scales_16_bit_and_float_images_and_refuses_what_has_no_gray_scale():
    levels = np.arange(256, dtype=np.uint16).reshape(16, 16)
    assert np.array_equal(np.asarray(gray.to_gray(Image.fromarray(levels * 257))), levels)
    assert np.array_equal(np.asarray(gray.to_gray(Image.fromarray((levels / 255).astype(np.float32)))), levels)
    with pytest.raises(ValueError, match="only floats in \\[0, 1\\]"):
        gray.to_gray(Image.fromarray(np.full((4, 4), 2.0, np.float32)))


@pytest.mark.parametrize("kind", ["16bit.png", "16bit.pgm", "float.tiff"])
def test_a_16_bit_or_float_photo_is_seen_as_its_8_bit_copy(model_dir, tmp_path, kind):
    levels = np.asarray(_astronaut().convert("L"))
    path = tmp_path / f"astronaut_{kind}"
    if kind.startswith("16bit"):
        Image.fromarray(levels.astype(np.uint16) * 257).save(path)
    else:
        Image.fromarray((levels / 255).astype(np.float32)).save(path)
    Image.fromarray(levels).save(tmp_path / "astronaut.png")
    code, [expected, line], _ = _predict(model_dir, tmp_path / "astronaut.png", path)
    assert code == 0 and line["faces"] == 1
    assert line["box"] == expected["box"] and line["probabilities"] == expected["probabilities"]


@pytest.mark.parametrize("mode", ["CMYK", "F"])
def test_a_48x48_crop_in_cmyk_or_float_is_answered_as_its_gray_copy(model_dir, tmp_path, mode):
    _crop48(tmp_path / "gray.png")
    levels = np.asarray(Image.open(tmp_path / "gray.png"))
    image = (Image.fromarray(levels).convert("CMYK") if mode == "CMYK"
             else Image.fromarray((levels / 255).astype(np.float32)))
    image.save(tmp_path / "crop.tiff")
    code, [expected, answer], _ = _predict(model_dir, tmp_path / "gray.png", tmp_path / "crop.tiff")
    assert code == 0, answer
    assert max(abs(answer["probabilities"][e] - expected["probabilities"][e]) for e in dc.EMOTIONS) < 0.005


# 5. Extreme aspect ratios, and a face search that fails ---------------------------------------------

def _png_of_zeros(path, width, height):
    """A gray PNG of zeros, written row by row (a few KiB for millions of pixels)."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    compressor = zlib.compressobj(9)
    rows = b"".join(compressor.compress(b"\0" * (width + 1)) for _ in range(height)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def test_a_strip_within_the_pixel_budget_costs_its_pixels_not_its_long_side_squared(model_dir, tmp_path):
    strip = _png_of_zeros(tmp_path / "strip.png", 1_000_000, 16)  # 16 Mpx; squared: 931 GiB
    code, lines, _ = _predict(model_dir, *_inputs(tmp_path, strip))
    assert code == 0
    assert lines[1] == {"input": str(strip), "faces": 0, "face": None,
                        "no_face": "no face found in the 1000000x16 image"}


def test_letterboxing_keeps_faces_in_the_images_pixels():
    canvas = np.zeros((700, 512), np.uint8)
    canvas[100:612] = np.asarray(_astronaut().convert("L"))
    [face] = detect.default_detector()(canvas)
    x, y, w, h = ASTRONAUT_FACE
    assert detect.iou(face.box, (x, y + 100, w, h)) > 0.6
    (lx, ly), (rx, ry) = face.eyes
    assert 185 < lx < 215 and 235 < rx < 260 and abs(ly - 201) < 10 and abs(ry - 201) < 10


def test_a_face_search_that_fails_gives_an_error_line_and_the_rest_go_on(model_dir, tmp_path, monkeypatch):
    def fails(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(detect, "find_faces", fails)
    _astronaut().save(tmp_path / "photo.png")
    code, lines, _ = _predict(model_dir, *_inputs(tmp_path, tmp_path / "photo.png"))
    _assert_error_between(lines, code, tmp_path / "photo.png", "face search failed: MemoryError")


# 6. CSV files that cannot be read as one ----------------------------------------------------------

def _row(value):
    return " ".join([str(value)] * dc.NUM_PIXELS)


@pytest.mark.parametrize("kind,says", [
    ("utf16", "line 1: UTF-16 text"),
    ("binary", "line 1: not UTF-8 text"),
    ("huge_field", "line 3: field larger than field limit"),
    ("no_pixels", "no 'pixels' column"),
    ("empty", "empty file"),
])
def test_a_csv_that_cannot_be_read_gets_an_error_line_naming_it_and_the_rest_go_on(model_dir, tmp_path, kind, says):
    path = tmp_path / f"{kind}.csv"
    path.write_bytes({
        "utf16": f"emotion,pixels\n0,{_row(7)}\n".encode("utf-16"),
        "binary": b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01",
        "huge_field": f"emotion,pixels\n0,{_row(7)}\n0,{'1 ' * 100_000}\n".encode(),
        "no_pixels": b"a,b\n1,2\n",
        "empty": b"",
    }[kind])
    code, lines, _ = _predict(model_dir, *_inputs(tmp_path, path))
    assert code == 1
    errors = [line for line in lines if "error" in line]
    assert errors == [{"input": str(path), "error": errors[0]["error"]}]
    assert str(path) in errors[0]["error"] and says in errors[0]["error"], errors[0]["error"]
    assert lines[0]["input"].endswith("before.png") and lines[-1]["input"].endswith("after.png")
    if kind == "huge_field":  # the row before the bad one is answered
        assert [line["input"] for line in lines[1:3]] == [f"{path}:2", str(path)]


# 7. Folders: links, OS metadata, what is skipped -------------------------------------------------

def test_a_folder_follows_its_links_once_skips_os_metadata_and_names_what_it_does_not_read(model_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _crop48(elsewhere / "linked.png")
    photos = tmp_path / "photos"
    (photos / "2024").mkdir(parents=True)
    _crop48(photos / "2024" / "own.png")
    os.symlink(elsewhere, photos / "link")
    os.symlink(photos, photos / "2024" / "loop")  # a link back up: no loop
    (photos / "2024" / "._own.png").write_bytes(b"\0\x05\x16\x07" + b"\0" * 60)  # macOS AppleDouble
    (photos / ".DS_Store").write_bytes(b"\0\0\0\x01Bud1")
    (photos / "notes.txt").write_text("holiday")
    (photos / "IMG_0003.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    code, lines, stderr = _predict(model_dir, photos)
    assert code == 0
    assert [line["input"] for line in lines] == [str(photos / "2024" / "own.png"), str(photos / "link" / "linked.png")]
    assert "notes.txt" in stderr and "IMG_0003.HEIC" in stderr and "2 operating-system metadata" in stderr


# 9. The byte budget for pipes -------------------------------------------------------------------------

def test_the_byte_budget_holds_for_a_fifo_whose_size_is_unknown(model_dir, tmp_path):
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(noise, format="PNG")
    fifo = tmp_path / "piped.png"
    os.mkfifo(fifo)

    def write():
        try:
            with open(fifo, "wb") as f:
                f.write(noise.getvalue())
        except BrokenPipeError:  # predict stopped reading at the budget
            pass

    threading.Thread(target=write, daemon=True).start()
    assert len(noise.getvalue()) > 2000
    code, [line], _ = _predict(model_dir, "--max-image-bytes", 2000, fifo)
    assert code == 1 and "over the image byte budget of 2,000" in line["error"]


# 10. Error messages that say what is wrong ---------------------------------------------------------

def test_error_lines_say_empty_file_heic_and_tensorflows_cause_in_one_line(model_dir, tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "IMG_0001.heic").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 100)
    code, lines, _ = _predict(model_dir, tmp_path / "zero.jpg", tmp_path / "IMG_0001.heic")
    assert code == 1
    assert "empty file" in lines[0]["error"]
    assert str(tmp_path / "IMG_0001.heic") in lines[1]["error"] and "HEIC" in lines[1]["error"]
    assert "BytesIO" not in lines[1]["error"]

    jpeg = io.BytesIO()
    _astronaut().save(jpeg, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(jpeg.getvalue()[:len(jpeg.getvalue()) // 3])
    code, [line], _ = _predict(model_dir, "--no-detect", tmp_path / "truncated.jpg")
    assert code == 1 and "\n" not in line["error"] and "Graph execution" not in line["error"]
    assert "JPEG" in line["error"], line["error"]


# 11. Video frames without a face ---------------------------------------------------------------------

def test_video_frames_without_a_face_skip_the_tiled_search_photos_keep_it(model_dir, tmp_path, monkeypatch):
    tiled = []
    real = detect.FaceDetector._tiled  # pylint: disable=protected-access
    monkeypatch.setattr(detect.FaceDetector, "_tiled", lambda self, g: tiled.append(g.shape) or real(self, g))
    blank = np.full((96, 128), 120, np.uint8)
    clip = video.write_video(str(tmp_path / "blank.mp4"), [blank] * 3)
    code, lines, _ = _predict(model_dir, clip)
    assert code == 0 and [line["faces"] for line in lines] == [[], [], []]
    assert tiled == []
    assert detect.find_faces(blank) == [] and tiled  # the default, for photos and ingestion, is unchanged


class _BudgetedBandModel(_BandModel):
    """The band model with a served model's budgets: serving_images refuses an image over 10,000
    pixels or a request over 5,000 bytes, as the exported graph refuses them."""

    def __init__(self):
        super().__init__()
        self.max_image_pixels = tf.Variable(10_000, dtype=tf.int64, trainable=False)
        self.max_image_bytes = tf.Variable(5_000, dtype=tf.int64, trainable=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_images(self, image_bytes):
        def size(encoded):
            shape = tf.shape(tf.io.decode_image(encoded, channels=3, expand_animations=False), out_type=tf.int64)
            return shape[0] * shape[1]

        sizes = tf.map_fn(size, image_bytes, fn_output_signature=tf.int64)
        request_bytes = tf.reduce_sum(tf.cast(tf.strings.length(image_bytes), tf.int64))
        with tf.control_dependencies([
                tf.debugging.assert_less_equal(sizes, self.max_image_pixels, message="over the model's pixel budget"),
                tf.debugging.assert_less_equal(request_bytes, self.max_image_bytes,
                                               message="over the model's byte budget")]):
            return _BandModel.serve_images.python_function(self, image_bytes)


def test_no_detect_with_a_pixel_budget_above_the_models_answers_instead_of_the_model_refusing(tmp_path):
    path = str(tmp_path / "budgeted")
    module = _BudgetedBandModel()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve_examples,
                                                  "serving_images": module.serve_images})
    big = tmp_path / "big.png"  # 200x150 = 30,000 pixels: 3x the model's budget
    ramp = np.repeat(np.linspace(20, 230, 150, dtype=np.float32)[:, None], 200, axis=1).astype(np.uint8)
    Image.fromarray(ramp).save(big)
    code, [refused], _ = _predict(path, "--no-detect", big)
    assert code == 1 and "over the image pixel budget of 10,000" in refused["error"]
    code, [line], _ = _predict(path, "--no-detect", "--max-image-pixels", 50_000, big)
    assert code == 0 and "error" not in line
    # The same picture within the model's budget gets the same answer (a box-reduced copy was sent).
    Image.fromarray(ramp).resize((100, 75), Image.Resampling.BOX).save(tmp_path / "small.png")
    _, [small], _ = _predict(path, "--no-detect", tmp_path / "small.png")
    assert line["emotion"] == small["emotion"]
    np.testing.assert_allclose(list(line["probabilities"].values()), list(small["probabilities"].values()),
                               atol=2e-3)


def test_no_detect_with_a_byte_budget_above_the_models_sends_a_copy_that_fits_it(tmp_path):
    path = str(tmp_path / "budgeted")
    module = _BudgetedBandModel()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve_examples,
                                                  "serving_images": module.serve_images})
    noise = tmp_path / "noise.png"  # 90x90 = 8,100 pixels, within the pixel budget; ~24 KB of PNG
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 90), dtype=np.uint8)).save(noise)
    assert noise.stat().st_size > 5_000
    code, [refused], _ = _predict(path, "--no-detect", noise)
    assert code == 1 and "over the image byte budget of 5,000" in refused["error"]
    code, [line], _ = _predict(path, "--no-detect", "--max-image-bytes", 100_000, noise)
    assert code == 0 and "error" not in line, line
