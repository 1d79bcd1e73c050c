"""The served model: the trained Keras model with the Transform graph baked in, saved with explicit
signatures, and its TFLite copy; and the way back from an exported model to the Keras model (the
report's attention view needs its layers).

Signatures (tf.saved_model.save, explicit):
- serving_default(examples: serialized tf.Example [B]) -> probabilities [B, 7], class_id [B],
  class_name [B], uncertain [B]. What TF Serving clients with canonical examples and TFMA call.
  The probabilities are temperature-scaled (trainer/calibration.py; T fitted on eval); `uncertain`
  is true when the top probability is below the abstention threshold chosen on eval.
- serving_images(image_bytes: encoded PNG/JPEG/GIF/BMP [B], any size, gray or colour) -> the same.
  The request is first checked against the byte budget (its images' bytes together), then each
  image against the pixel budget (its header's width and height, and for a GIF every frame's, read
  without decoding: TF Serving runs no Python, so the checks are in the graph) and refused with
  InvalidArgument naming the budget; then decoded, converted to gray (ITU-R 601 luma, as Pillow's
  "L" in ingestion), resized to 48x48 with antialiased bilinear (as ingestion), then the same
  Transform graph and model. The budgets travel with the model (max_image_pixels, max_image_bytes).
  An empty request gets empty answers ([0, 7], [0], ...), as serving_default does.
- transform_features(examples) -> the transformed features (what TFMA's preprocessing uses).

Beside it, tflite/model.tflite: the same Transform graph and model as TensorFlow Lite, raw `pixels`
int64 [B, 2304] -> probabilities [B, 7], for low-latency CPU inference (trainer/lite.py).
"""
import os
from typing import Tuple

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from contract import data as dc
from contract import training_record
from trainer import lite
from trainer import model as deep_emotion_model
from trainer.preprocessing import IMAGE_KEY

PROBABILITIES, CLASS_ID, CLASS_NAME, UNCERTAIN = "probabilities", "class_id", "class_name", "uncertain"
TTA_MODES = ("none", "flip")


def header_size(encoded: tf.Tensor):
    """(width, height) int64 of an encoded PNG, GIF, BMP or JPEG from its header alone, or (-1, -1)
    for any other format (decode_image refuses those itself). Nothing is decompressed: PNG's IHDR,
    GIF's logical screen and BMP's info header sit at fixed offsets; JPEG's frame header is found by
    tf.io.extract_jpeg_shape, which reads markers, not pixels."""
    head = tf.io.decode_raw(tf.strings.substr(tf.strings.join([tf.strings.substr(encoded, 0, 32),
                                                               tf.constant(b"\0" * 32)]), 0, 32), tf.uint8)
    head = tf.cast(head, tf.int64)

    def big_endian(offset, count):
        return tf.reduce_sum(head[offset:offset + count] * tf.constant([256 ** (count - 1 - i) for i in range(count)],
                                                                        tf.int64))

    def little_endian(offset, count):
        return tf.reduce_sum(head[offset:offset + count] * tf.constant([256 ** i for i in range(count)], tf.int64))

    def signed32(value):
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))  # BMP: negative height = top-down

    magic = tf.strings.substr(encoded, 0, 8)
    is_png = tf.equal(magic, b"\x89PNG\r\n\x1a\n")
    is_gif = tf.equal(tf.strings.substr(encoded, 0, 3), b"GIF")
    is_bmp = tf.equal(tf.strings.substr(encoded, 0, 2), b"BM")
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(encoded), tf.int64)
        return tf.stack([shape[1], shape[0]])

    def other():
        return tf.constant([-1, -1], tf.int64)

    return tf.unstack(tf.case([
        (is_png, lambda: tf.stack([big_endian(16, 4), big_endian(20, 4)])),
        (is_gif, lambda: tf.stack([little_endian(6, 2), little_endian(8, 2)])),
        (is_bmp, lambda: tf.stack([signed32(little_endian(18, 4)), signed32(little_endian(22, 4))])),
        (is_jpeg, jpeg)], default=other, exclusive=True))


# The GIF walk (gif_pixels) is a tf.while_loop of steps: a step reads one block's header and skips
# the run of same-size data sub-blocks that follows it (encoders write 255-byte ones: up to GIF_RUN
# of them, 64 KiB, at once), so an ordinary GIF takes a few steps a frame. A GIF that needs more
# than GIF_MAX_STEPS steps is refused: sub-blocks of changing sizes, or short extensions, cost a
# step each, and the cap bounds the walk's time whatever the bytes (about 0.6 s at the cap, 2 cores).
GIF_RUN = 256
GIF_MAX_STEPS = 16384
GIF_WALKING, GIF_COMPLETE, GIF_MALFORMED, GIF_OVER_BUDGET = 0, 1, 2, 3
_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B


def _gif_colour_table(flags: tf.Tensor) -> tf.Tensor:
    """Bytes of the colour table a GIF screen or image descriptor's flags announce (0: none)."""
    return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(2, flags % 8), 0)


def gif_pixels(encoded: tf.Tensor, max_pixels: int, max_steps: int = GIF_MAX_STEPS):
    """(pixels int64, status int32) of an encoded GIF, from its block structure alone (no LZW data
    is decompressed). TF's decoder (giflib's DGifSlurp) decodes every frame, each into a raster of
    its own width x height, even for tf.io.decode_image(expand_animations=False), and then makes
    an image as wide as the widest frame and as tall as the tallest; so pixels is the larger of
    the frames' width x height summed and that widest x tallest (the logical screen counted as
    one more frame's size, as the header check always did).

    The walk: header (6 bytes), logical screen descriptor (7), global colour table; then blocks:
    0x21 extension (label, data sub-blocks up to a 0 size byte), 0x2C image descriptor (9 bytes,
    local colour table, LZW minimum code size, data sub-blocks), 0x3B trailer. An extension with
    no data sub-block (its label, then 0) is malformed here: giflib 5.2 (TF's decoder) reads on
    past that 0 to the next one, where the spec ends the extension, so the two would find other
    blocks after it (a frame the spec's reading never sees, tested); everything else both read
    alike. status: GIF_COMPLETE (the trailer reached), GIF_MALFORMED (such an extension, another
    block type, or a block or sub-block running past the end), GIF_OVER_BUDGET (stopped as soon
    as pixels went over max_pixels) or GIF_WALKING (more than max_steps steps, see GIF_RUN)."""
    data = tf.io.decode_raw(encoded, tf.uint8)
    n = tf.size(data)
    padded = tf.concat([data, tf.zeros([16], tf.uint8)], 0)

    def bytes_at(positions):  # int32 bytes, 0 past the end (the walk compares positions with n)
        return tf.cast(tf.gather(padded, tf.minimum(positions, n + 15)), tf.int32)

    def little_endian(low, high):
        return tf.cast(low + 256 * high, tf.int64)

    _, _, _, _, _, _, width_low, width_high, height_low, height_high, flags = tf.unstack(bytes_at(tf.range(11)))
    start = 12 + _gif_colour_table(flags)  # the walk starts as if a sub-block chain ended there
    run_offsets = tf.range(GIF_RUN)

    def step(position, summed, widest, tallest, status):
        # `position`: a sub-block's size byte. 0 ends the chain and a block follows (at `start`,
        # the screen's end, too); the block's own data sub-blocks then begin at `chain`.
        size, kind, _, first_size, _, _, width_low, width_high, height_low, height_high, flags = tf.unstack(
            bytes_at(position + tf.range(11)))
        at_block = tf.logical_or(tf.equal(position, start), tf.equal(size, 0))
        is_extension = tf.logical_and(at_block, tf.equal(kind, _GIF_EXTENSION))
        is_image = tf.logical_and(at_block, tf.equal(kind, _GIF_IMAGE))
        width = tf.cast(is_image, tf.int64) * little_endian(width_low, width_high)
        height = tf.cast(is_image, tf.int64) * little_endian(height_low, height_high)
        summed, widest, tallest = summed + width * height, tf.maximum(widest, width), tf.maximum(tallest, height)
        chain = tf.where(is_extension, position + 3,
                         tf.where(is_image, position + 12 + _gif_colour_table(flags), position))
        # Sub-blocks: the one at `chain` and those of its size right after it (up to GIF_RUN) are
        # skipped at once; a 0 (the chain's end) is where the next step starts.
        size = bytes_at(chain)
        run_starts = chain + (size + 1) * run_offsets
        same = tf.logical_and(tf.equal(bytes_at(run_starts), size), run_starts < n)
        following = chain + tf.sign(size) * (size + 1) * tf.reduce_min(tf.where(same, GIF_RUN, run_offsets))
        status = tf.where(tf.maximum(summed, widest * tallest) > max_pixels, GIF_OVER_BUDGET, tf.where(
            tf.logical_and(at_block, tf.equal(kind, _GIF_TRAILER)), GIF_COMPLETE,
            tf.where(tf.reduce_any([tf.logical_and(at_block, tf.logical_not(tf.logical_or(is_extension, is_image))),
                                    tf.logical_and(is_extension, tf.equal(first_size, 0)), following >= n]),
                     GIF_MALFORMED, GIF_WALKING)))
        return following, summed, widest, tallest, status

    _, summed, widest, tallest, status = tf.while_loop(
        lambda *state: tf.equal(state[-1], GIF_WALKING), step,
        (start, tf.constant(0, tf.int64), little_endian(width_low, width_high),
         little_endian(height_low, height_high), tf.where(start < n, GIF_WALKING, GIF_MALFORMED)),
        maximum_iterations=max_steps)
    return tf.maximum(summed, widest * tallest), status


# A request's images together may claim this many times the image pixel budget: decoding is the cost
# of a request, and 20 MiB of small PNGs each just under the budget (25 of 4000x4000 took 5.5 s here)
# would otherwise cost minutes. Four photos at the budget pass; a batch of crops is far under.
REQUEST_IMAGES_AT_BUDGET = 4


def claimed_pixels(encoded: tf.Tensor, max_pixels: int, max_bytes: int) -> tf.Tensor:
    """int64 [2]: (the pixels an encoded image claims, from its header, or for a GIF its walked
    frames (gif_pixels); its GIF walk status, GIF_COMPLETE for other formats), nothing decoded."""
    size = tf.cast(tf.strings.length(encoded), tf.int64)
    width, height = header_size(encoded)
    is_gif = tf.equal(tf.strings.substr(encoded, 0, 3), b"GIF")
    # Over the byte budget, the byte assertion refuses it; the walk is left out.
    walked, status = tf.cond(tf.logical_and(is_gif, size <= max_bytes), lambda: gif_pixels(encoded, max_pixels),
                             lambda: (tf.constant(0, tf.int64), tf.constant(GIF_COMPLETE)))
    return tf.stack([tf.maximum(width * height, walked), tf.cast(status, tf.int64)])


def checked(encoded: tf.Tensor, max_pixels: int, max_bytes: int) -> tf.Tensor:
    """The encoded image, after refusing (InvalidArgument, naming the budget) one over the byte or
    pixel budget: checked before anything is decoded, so a decompression bomb costs a header read
    (for a GIF, a walk over its blocks: every frame counts, see gif_pixels)."""
    return checked_claim(encoded, max_pixels, max_bytes)[0]


def checked_claim(encoded: tf.Tensor, max_pixels: int, max_bytes: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """(encoded, its claimed pixels int64 scalar), after checked's refusals."""
    size = tf.cast(tf.strings.length(encoded), tf.int64)
    claim = claimed_pixels(encoded, max_pixels, max_bytes)
    pixels, status = claim[0], tf.cast(claim[1], tf.int32)
    with tf.control_dependencies([
            tf.debugging.assert_less_equal(size, tf.constant(max_bytes, tf.int64), summarize=2, message=(
                f"image refused: over the image byte budget of {max_bytes:,} bytes (its bytes, the budget):")),
            tf.debugging.assert_less_equal(pixels, tf.constant(max_pixels, tf.int64), summarize=2, message=(
                f"image refused: its header claims more than the image pixel budget of {max_pixels:,} pixels "
                "(width x height, of all its frames for a GIF; the budget):")),
            tf.debugging.assert_none_equal(status, GIF_MALFORMED, message=(
                f"image refused: a GIF whose block structure is malformed or runs past its end, so its frames "
                f"cannot be counted against the image pixel budget of {max_pixels:,} pixels")),
            tf.debugging.assert_none_equal(status, GIF_WALKING, message=(
                f"image refused: a GIF of more than {GIF_MAX_STEPS:,} blocks, over what is walked to count its "
                f"frames against the image pixel budget of {max_pixels:,} pixels"))]):
        return tf.identity(encoded), tf.identity(pixels)


def checked_request(image_bytes: tf.Tensor, max_bytes: int) -> tf.Tensor:
    """The request's images, after refusing (InvalidArgument, naming the budget) a request whose
    images total more than the byte budget: the budget is per request, whatever the batch."""
    total = tf.reduce_sum(tf.cast(tf.strings.length(image_bytes), tf.int64))
    with tf.control_dependencies([tf.debugging.assert_less_equal(
            total, tf.constant(max_bytes, tf.int64), summarize=2, message=(
                f"request refused: its images total more than the byte budget of {max_bytes:,} bytes "
                "(their bytes, the budget):"))]):
        return tf.identity(image_bytes)


def checked_images(image_bytes: tf.Tensor, max_pixels: int, max_bytes: int) -> tf.Tensor:
    """The request's images, after refusing (InvalidArgument, naming the budget) the request over the
    byte budget, any image over an image budget (checked), then a request whose images claim more
    than REQUEST_IMAGES_AT_BUDGET times the image pixel budget together; nothing decoded."""
    image_bytes = checked_request(image_bytes, max_bytes)
    image_bytes, claimed = tf.map_fn(lambda encoded: checked_claim(encoded, max_pixels, max_bytes), image_bytes,
                                     fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64)))
    limit = REQUEST_IMAGES_AT_BUDGET * max_pixels
    with tf.control_dependencies([tf.debugging.assert_less_equal(
            tf.reduce_sum(claimed), tf.constant(limit, tf.int64), summarize=2, message=(
                f"request refused: its images claim more than {limit:,} pixels together ({REQUEST_IMAGES_AT_BUDGET} "
                f"times the image pixel budget of {max_pixels:,}; their pixels, the limit):"))]):
        return tf.identity(image_bytes)


def decode_to_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """One encoded image of any size and colour -> canonical int64 pixels [2304] (as ingestion)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    gray = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
    small = tf.image.resize(gray, [dc.IMAGE_SIZE, dc.IMAGE_SIZE], method="bilinear", antialias=True)
    return tf.reshape(tf.cast(tf.clip_by_value(tf.round(small), 0, 255), tf.int64), [dc.NUM_PIXELS])


def served_probabilities(logits_fn, image: tf.Tensor, temperature, tta: str = "none") -> tf.Tensor:
    """What the signatures answer for a normalised image batch: softmax(logits / T), averaged with the
    mirror image's under tta="flip". One function for the export and for whoever checks it."""
    probabilities = tf.nn.softmax(logits_fn(image) / temperature)
    if tta == "flip":
        probabilities = (probabilities + tf.nn.softmax(logits_fn(tf.reverse(image, axis=[2])) / temperature)) / 2.0
    return probabilities


class ServingModule(tf.Module):
    """The trained model plus the Transform graph, exported with the three signatures.

    temperature: divides the logits before the softmax (1: the model's own probabilities).
    uncertain_below: answers whose top probability is below it are flagged `uncertain` (0: never).
    tta: "flip" averages the probabilities of the face and its mirror image (test-time
        augmentation: about twice the model's cost per face); "none" serves the face as it is.
    """

    def __init__(self, model: tf_keras.Model, tf_transform_output: tft.TFTransformOutput,
                 temperature: float = 1.0, uncertain_below: float = 0.0, tta: str = "none",
                 max_image_pixels: int = dc.MAX_IMAGE_PIXELS, max_image_bytes: int = dc.MAX_IMAGE_BYTES):
        super().__init__()
        if tta not in TTA_MODES:
            raise ValueError(f"tta={tta!r}: expected one of {TTA_MODES}")
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: must be > 0")
        self.model = model
        self.logits = deep_emotion_model.logits_model(model)
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._raw_spec = tf_transform_output.raw_feature_spec()
        self._pixels_spec = {dc.PIXELS: self._raw_spec[dc.PIXELS]}  # all a client must send
        self._class_names = tf.constant(dc.EMOTIONS)
        self.temperature = tf.constant(float(temperature), tf.float32)
        self.uncertain_below = tf.constant(float(uncertain_below), tf.float32)
        self._tta = tta
        # In the graph as constants; saved with the model too (loaded.max_image_pixels.numpy()), for
        # `deep-emotion predict` and the model card to apply and show the same budgets.
        self._budgets = (int(max_image_pixels), int(max_image_bytes))
        self.max_image_pixels = tf.Variable(int(max_image_pixels), dtype=tf.int64, trainable=False,
                                            name="max_image_pixels")
        self.max_image_bytes = tf.Variable(int(max_image_bytes), dtype=tf.int64, trainable=False,
                                           name="max_image_bytes")

    def _probabilities(self, pixels: tf.Tensor) -> tf.Tensor:
        image = self.tft_layer({dc.PIXELS: pixels})[IMAGE_KEY]
        return served_probabilities(lambda x: self.logits(x, training=False), image, self.temperature, self._tta)

    def _predict(self, pixels: tf.Tensor) -> dict:
        def answers():
            probabilities = self._probabilities(pixels)
            class_id = tf.argmax(probabilities, axis=-1)
            return {PROBABILITIES: probabilities, CLASS_ID: class_id,
                    CLASS_NAME: tf.gather(self._class_names, class_id),
                    UNCERTAIN: tf.reduce_max(probabilities, axis=-1) < self.uncertain_below}

        def no_answers():  # the model's convolutions refuse a batch of none
            return {PROBABILITIES: tf.zeros([0, dc.NUM_CLASSES], tf.float32), CLASS_ID: tf.zeros([0], tf.int64),
                    CLASS_NAME: tf.zeros([0], tf.string), UNCERTAIN: tf.zeros([0], tf.bool)}

        return tf.cond(tf.shape(pixels)[0] > 0, answers, no_answers)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        return self._predict(tf.io.parse_example(examples, self._pixels_spec)[dc.PIXELS])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_images(self, image_bytes):
        image_bytes = checked_images(image_bytes, *self._budgets)
        pixels = tf.map_fn(decode_to_pixels, image_bytes, fn_output_signature=tf.TensorSpec([dc.NUM_PIXELS], tf.int64))
        return self._predict(pixels)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        return self.tft_layer(tf.io.parse_example(examples, self._raw_spec))

    @tf.function(input_signature=[tf.TensorSpec([None, dc.NUM_PIXELS], tf.int64, name=dc.PIXELS)])
    def serve_pixels(self, pixels):
        """What the TFLite copy runs: no tf.Example parsing (not a TFLite built-in)."""
        return {PROBABILITIES: self._probabilities(pixels)}

    def save(self, export_dir: str) -> str:
        """The SavedModel with its three signatures, then its TFLite copy; returns the copy's path."""
        with deep_emotion_model.without_layer_traces():
            tf.saved_model.save(self, export_dir, signatures={
                "serving_default": self.serve_examples,
                "serving_images": self.serve_images,
                "transform_features": self.transform_features,
            })
        return lite.write(lite.convert(self.serve_pixels.get_concrete_function(), self), export_dir)


def load_keras_model(serving_model_dir: str, model_run_dir: str) -> Tuple[tf_keras.Model, str]:
    """(the trained Keras model, its layout), rebuilt with trainer/model.py from an exported model.

    The SavedModel (ServingModule) holds the model's variables under `model` but no loadable Keras
    model. The layout comes from the Trainer's training record; code that does not match the
    checkpoint fails to restore (and callers compare the probabilities, see report.model_analysis).
    """
    layout = training_record.read(model_run_dir)["layout"]
    model = deep_emotion_model.build_model(layout, mixed_precision=False)
    tf.train.Checkpoint(model=model).read(os.path.join(serving_model_dir, "variables", "variables")).expect_partial()
    return model, layout


def restore_weights(model: tf_keras.Model, serving_model_dir: str) -> None:
    """Loads an exported model's weights into `model` (same layout), for a warm start: every weight
    of `model` must be found in the export, or ValueError says which is missing or of another shape."""
    prefix = os.path.join(serving_model_dir, "variables", "variables")
    if not tf.io.gfile.exists(prefix + ".index"):
        raise ValueError(f"{serving_model_dir} holds no exported model (no variables/variables.index)")
    try:
        status = tf.train.Checkpoint(model=model).read(prefix)
        status.assert_existing_objects_matched().expect_partial()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(f"the model in {serving_model_dir} does not fit this layout: {str(error)[:300]}") from None
