"""Deep-Emotion (Minaee & Abdolrashidi, arXiv 1902.01019): an attentional CNN for 48x48 faces.

A localisation network looks at the face and predicts an affine theta; a spatial transformer
(trainer/stn.py) warps by it, so the classifier sees the part of the face that matters. Two
layouts (docs/design.md, "The model"):

- "paper" (default): the paper's figure as the TensorFlow port the project started from built
  it; the transformer warps the 9x9x10 feature map. 47,657 trainable parameters.
- "reference": the most used PyTorch implementation (omarsayed7/Deep-Emotion); the transformer
  warps the input image, batch norm after the 4th conv. 66,877 trainable parameters. Its dropout
  is an ordinary Keras Dropout, off at inference (theirs, F.dropout, stays on: a bug).

Input `image`: float32 [batch, 48, 48, 1], already normalised by Transform (the model does not
normalise). Output `probabilities`: float32 softmax [batch, num_classes], also under mixed
precision (TFMA's per-class metrics need probabilities; Keras still computes the loss from the
logits behind the softmax).

Precision (`training_precision`): float16 mixed precision on a GPU; bfloat16 mixed precision on a CPU
that multiplies bfloat16 natively (AVX512_BF16 or AMX: oneDNN runs these small convolutions about
1.4x faster than in float32, bench/model.py, and over 6 seeds on the demo data it was as accurate,
bench/recipe.py, docs/design.md); float32 on other CPUs. Whatever it trained in, the model is
calibrated and served in float32 (`float32_copy`: the same weights, float32 layers).
"""
import contextlib
import re
import warnings

import tensorflow as tf
import tf_keras
from tensorflow.python.autograph.core import config as autograph_config
from tf_keras import layers

from contract.data import IMAGE_SIZE, NUM_CLASSES
from trainer.stn import SpatialTransformer


def _skip_autograph_for_tf_keras():
    """Let AutoGraph leave tf_keras's own code alone, as it always has left `keras`'s.

    TF 2.16's rules name `keras` but not its Keras-2 successor `tf_keras` (later TensorFlow
    adds it), so the first fit/evaluate/predict converted some 1,900 tf_keras functions:
    40-80 s here instead of ~5 s. Process-wide and idempotent.
    """
    rules = tuple(autograph_config.CONVERSION_RULES)
    if not any(isinstance(r, autograph_config.DoNotConvert) and r.matches("tf_keras") for r in rules):
        autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert("tf_keras"),) + rules


_skip_autograph_for_tf_keras()

LAYOUTS = ("paper", "reference")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# Layer names other code relies on (attention_model, the lead's signatures, the tests).
INPUT_NAME = "image"
THETA = "theta"
ATTENTION = "attention"
LOGITS = "logits"
OUTPUT_NAME = "probabilities"


def _theta_head(hidden):
    """The localisation net's last layer: 6 numbers, starting at the identity transform.

    Zero weights and an identity bias make the untrained transformer a no-op, so training starts
    from the plain CNN. Kept in float32: small, and the transform wants the precision.
    """
    return layers.Dense(
        6, kernel_initializer="zeros", bias_initializer=tf_keras.initializers.Constant(IDENTITY_THETA),
        dtype="float32", name=THETA)(hidden)


@tf_keras.utils.register_keras_serializable(package="deep_emotion")
class LinearConvPair(layers.Layer):
    """Two stacked 'valid' 3x3 convolutions with nothing between them, computed as one 5x5 conv.

    conv2(conv1(x)) is linear in x, so it is a single conv whose kernel is conv1's kernel
    convolved with conv2's (bias: b2 + K2 . b1). For the paper layout's 1 -> 10 -> 10 pair
    at 48x48 that is 4x fewer multiply-adds, and the costly 10 -> 10 backward pass on the
    46x46 map disappears. The variables (conv1, conv2: 100 + 910 parameters) and the function
    are the paper's; gradients reach them through the kernel composition.
    """

    def __init__(self, filters=10, mid_filters=10, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.mid_filters = filters, mid_filters
        self.conv1 = layers.Conv2D(mid_filters, 3, name="conv1")
        self.conv2 = layers.Conv2D(filters, 3, name="conv2")

    def build(self, input_shape):
        with tf.name_scope(self.conv1.name):
            self.conv1.build(input_shape)
        with tf.name_scope(self.conv2.name):
            self.conv2.build(self.conv1.compute_output_shape(input_shape))
        super().build(input_shape)

    def call(self, inputs):
        k1, k2 = self.conv1.kernel, self.conv2.kernel  # [3, 3, in, mid], [3, 3, mid, out]
        # Full convolution of the kernels: conv1's kernel as `in` images of `mid` channels,
        # zero-padded by 2, correlated with conv2's kernel turned by 180 degrees.
        kernel_images = tf.pad(tf.transpose(k1, [2, 0, 1, 3]), [[0, 0], [2, 2], [2, 2], [0, 0]])
        kernel = tf.transpose(tf.nn.conv2d(kernel_images, tf.reverse(k2, [0, 1]), 1, "VALID"), [1, 2, 0, 3])
        bias = self.conv2.bias + tf.einsum("hwmo,m->o", k2, self.conv1.bias)
        kernel, bias = tf.cast(kernel, self.compute_dtype), tf.cast(bias, self.compute_dtype)
        return tf.nn.bias_add(tf.nn.conv2d(inputs, kernel, 1, "VALID"), bias)

    def compute_output_shape(self, input_shape):
        return self.conv2.compute_output_shape(self.conv1.compute_output_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "mid_filters": self.mid_filters}


def _classifier(features, num_classes, l2):
    regularizer = tf_keras.regularizers.L2(l2) if l2 else None
    x = layers.Flatten(name="flatten")(features)
    x = layers.Dense(50, activation="relu", kernel_regularizer=regularizer, name="fc1")(x)
    # In float32 under mixed precision (a 50 x 7 layer): the loss and the calibration read these logits,
    # and bfloat16 keeps only 8 bits of them.
    logits = layers.Dense(num_classes, kernel_regularizer=regularizer, dtype="float32", name=LOGITS)(x)
    return layers.Softmax(dtype="float32", name=OUTPUT_NAME)(logits)


def _paper(image, num_classes, dropout_rate, l2):
    # Feature extractor: 48 -> 46 -> 44 (conv1, conv2: run as one 5x5) -> 22 -> 20 -> 18 -> 9x9x10.
    x = LinearConvPair(10, 10, name="conv1_conv2")(image)
    x = layers.ReLU()(layers.MaxPool2D(2)(x))
    x = layers.Conv2D(10, 3, name="conv3")(x)
    x = layers.Conv2D(10, 3, name="conv4")(x)
    x = layers.ReLU()(layers.MaxPool2D(2)(x))
    # In float32 under mixed precision: the transformer next computes in float32 anyway, and
    # TensorFlow's CPU select, multiply and random draw are slower in bfloat16 than in float32
    # (dropout's ops took 13.6 us of a ~190 us bfloat16 training step an image, one core; 6.8 us
    # in float32, profiled over the Keras train step).
    features = layers.Dropout(dropout_rate, dtype="float32", name="dropout")(x)
    # Localisation on the input image: 48 -> 12 -> 3, 3x3x10 = 90 -> 32 -> theta.
    loc = layers.Conv2D(8, 3, padding="same", name="loc_conv1")(image)
    loc = layers.ReLU()(layers.MaxPool2D(4)(loc))
    loc = layers.Conv2D(10, 3, padding="same", name="loc_conv2")(loc)
    loc = layers.ReLU()(layers.MaxPool2D(4)(loc))
    loc = layers.Dense(32, activation="relu", name="loc_fc")(layers.Flatten(name="loc_flatten")(loc))
    attended = SpatialTransformer(name=ATTENTION)([features, _theta_head(loc)])
    return _classifier(attended, num_classes, l2)


def _reference(image, num_classes, dropout_rate, l2):
    # Localisation on the input image: 48 -> 42 -> 21 -> 17 -> 8, 8x8x10 = 640 -> 32 -> theta.
    loc = layers.Conv2D(8, 7, name="loc_conv1")(image)
    loc = layers.ReLU()(layers.MaxPool2D(2)(loc))
    loc = layers.Conv2D(10, 5, name="loc_conv2")(loc)
    loc = layers.ReLU()(layers.MaxPool2D(2)(loc))
    loc = layers.Dense(32, activation="relu", name="loc_fc")(layers.Flatten(name="loc_flatten")(loc))
    attended = SpatialTransformer(name=ATTENTION)([image, _theta_head(loc)])
    # Classifier CNN on the warped image.
    x = layers.Conv2D(10, 3, activation="relu", name="conv1")(attended)
    x = layers.Conv2D(10, 3, name="conv2")(x)
    x = layers.ReLU()(layers.MaxPool2D(2)(x))
    x = layers.Conv2D(10, 3, activation="relu", name="conv3")(x)
    x = layers.Conv2D(10, 3, name="conv4")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="norm")(x)  # PyTorch's defaults
    x = layers.ReLU()(layers.MaxPool2D(2)(x))
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    return _classifier(x, num_classes, l2)


def native_bfloat16_cpu(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512_BF16 or AMX-BF16). Elsewhere oneDNN
    emulates bfloat16 and it is slower than float32."""
    try:
        with open(cpuinfo) as f:
            return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", f.read()))
    except OSError:
        return False


def training_precision(requested: str = "auto") -> str:
    """The Keras policy to train in: `requested`, or for "auto" mixed_float16 when a GPU is visible,
    mixed_bfloat16 on a CPU with native bfloat16 (`native_bfloat16_cpu`) and float32 otherwise.
    mixed_bfloat16 is taken as asked; on a CPU without native bfloat16 it is emulated, slower than
    float32, and a warning says so."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if requested == "auto":
        return "mixed_float16" if gpu else "mixed_bfloat16" if native_bfloat16_cpu() else "float32"
    if requested == "mixed_bfloat16" and not gpu and not native_bfloat16_cpu():
        warnings.warn("precision mixed_bfloat16: this CPU has no native bfloat16 (AVX512_BF16/AMX); oneDNN "
                      "emulates it, slower than float32", RuntimeWarning, stacklevel=2)
    return requested


def build_model(layout="paper", num_classes=NUM_CLASSES, *, dropout_rate=0.5, l2=None,
                mixed_precision=None, seed=None):
    """The Deep-Emotion tf_keras model: `image` [B, 48, 48, 1] -> `probabilities` [B, num_classes].

    l2: weight of the L2 penalty on the two classifier dense layers; None means the layout's
        default (paper 1e-3, our choice: the paper gives no value; reference 0, as PyTorch's).
    mixed_precision: float16 compute with float32 variables, theta, sampler and probabilities;
        None means "when a GPU is visible". The model then carries the mixed policy, so
        `compile` wraps the optimiser in loss scaling. A policy name ("mixed_bfloat16",
        "float32", ...: `training_precision`) chooses it directly.
    seed: when given, seeds Python, NumPy and TensorFlow (tf_keras.utils.set_random_seed) so the
        initial weights are reproducible. A global side effect, like Keras's own.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"build_model: layout must be one of {LAYOUTS}, got {layout!r}")
    if mixed_precision is None:
        mixed_precision = bool(tf.config.list_physical_devices("GPU"))
    policy = mixed_precision if isinstance(mixed_precision, str) else "mixed_float16" if mixed_precision else "float32"
    if policy not in PRECISIONS[1:]:
        raise ValueError(f"build_model: mixed_precision must be a bool or one of {PRECISIONS[1:]}, got {policy!r}")
    if l2 is None:
        l2 = 1e-3 if layout == "paper" else 0.0
    if seed is not None:
        tf_keras.utils.set_random_seed(seed)
    previous_policy = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(policy)
    try:  # layers take the global policy when built; restore it for whoever builds next
        image = layers.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name=INPUT_NAME)
        body = _paper if layout == "paper" else _reference
        probabilities = body(image, num_classes, dropout_rate, l2)
        return tf_keras.Model(image, probabilities, name=f"deep_emotion_{layout}")
    finally:
        tf_keras.mixed_precision.set_global_policy(previous_policy)


def float32_copy(model):
    """The model with float32 layers and the same weights: what is exported and calibrated, whatever
    precision it trained in (its variables are float32 in every policy, so nothing is rounded).
    A float32 model is returned as it is."""
    if model.dtype_policy.name == "float32":
        return model
    layout = model.name[len("deep_emotion_"):]
    copy = build_model(layout, model.output_shape[-1], mixed_precision=False)
    copy.set_weights(model.get_weights())
    return copy


@contextlib.contextmanager
def without_layer_traces():
    """Save (tf.saved_model.save, TFLite conversion) a module holding a Keras model with its weights
    and signatures, but without Keras's own copy of every layer's call.

    Why: Keras adds to any SavedModel that holds one of its models what `tf_keras.models.load_model`
    would need: each layer's call traced again (its `call_and_return_conditional_losses`
    functions). Nothing here loads an export as Keras (export.load_keras_model rebuilds the layout
    from code and reads the checkpoint), and those traces were over half of the Trainer's export
    (SavedModel and TFLite copy 9.2 -> 4.3 s here). The variables, what a checkpoint restores,
    and the signatures are the same. tf_keras's only switch for it is `Model.save(save_traces=False)`,
    which saves the Keras model itself and not a module around it; this sets the scope that switch
    sets (internal to tf_keras 2.16; without it, saving falls back to keeping the traces).
    """
    try:
        from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model  # pylint: disable=import-outside-toplevel
        scope = keras_saved_model.keras_option_scope(save_traces=False, in_tf_saved_model_scope=False)
    except (ImportError, AttributeError):  # another tf_keras: slower, not wrong
        scope = contextlib.nullcontext()
    with scope:
        yield


def attention_model(model, view="input"):
    """A model from `image` to what the spatial transformer makes of it, for visualisation.

    view="input": the input image warped by the model's theta, [B, 48, 48, 1] — what a person
        wants to see. For the reference layout this is exactly what the classifier sees; for
        the paper layout it shows where the same theta points in image space.
    view="features": the sampler's actual output — the warped 9x9x10 feature map for the paper
        layout (the same as "input" for the reference layout).
    view="theta": the affine parameters themselves, [B, 6] (normalised coordinates, stn.py).
    """
    theta = model.get_layer(THETA).output
    if view == "input":
        output = SpatialTransformer(name="attention_input_view")([model.input, theta])
    elif view == "features":
        output = model.get_layer(ATTENTION).output
    elif view == "theta":
        output = theta
    else:
        raise ValueError(f"attention_model: view must be 'input', 'features' or 'theta', got {view!r}")
    return tf_keras.Model(model.input, output, name=f"{model.name}_attention_{view}")


def logits_model(model):
    """The same model up to its logits (float32): what temperature scaling and TTA work on."""
    logits = model.get_layer(LOGITS).output
    return tf_keras.Model(model.input, tf.cast(logits, tf.float32), name=f"{model.name}_logits")


def trainable_parameters(model):
    """Number of trainable scalars (what the layouts' 47,657 / 66,877 count)."""
    return int(sum(tf.size(w).numpy() for w in model.trainable_weights))
