"""The canonical example every source is turned into (docs/design.md, "The data contract").

One place for feature names, the label map and the image geometry: ingestion, the schema,
Transform, the Trainer, serving and the reports all read them from here.
"""
import re

IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE  # 2304, row-major, grayscale, 0..255

# tf.Example feature keys.
PIXELS = "pixels"        # int64 list, exactly NUM_PIXELS values in [0, 255]
LABEL = "emotion"        # int64 in [0, 6], FER2013 ids
SOURCE = "source"        # bytes, one of SOURCES
IMAGE_ID = "image_id"    # bytes, traceable origin ("fer2013.csv:1234", "jaffe/KA.AN1.39.tiff")
SUBJECT = "subject"      # bytes, person or character; keeps splits subject-disjoint
# float list of NUM_CLASSES shares summing to 1, only where a dataset gives a label distribution
# (FER+ votes); Transform gives every other example the one-hot of its label.
LABEL_SHARES = "emotion_shares"
# float list (x, y, width, height): where in its source image a face-cropped example's face was
# found, in that image's pixels; only for images that went through the face stage.
FACE_BOX = "face_box"

# FER2013 class ids; every other dataset maps onto these.
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

SOURCES = ("fer2013", "ckplus", "jaffe", "ferg")

SPLITS = ("train", "eval", "test")

# How each dataset names its classes, mapped to EMOTIONS names. Ingestion reads these labels and the
# demo-data generator writes them: one table, so the two can never disagree.
CONTEMPT = "contempt"  # CK+ and FER+ have it, FER2013 does not: excluded unless mapped (contempt_as)
# The original CK+ distribution's Emotion/*_emotion.txt codes.
CKPLUS_CODES = {0: "neutral", 1: "angry", 2: CONTEMPT, 3: "disgust", 4: "fear", 5: "happy", 6: "sad",
                7: "surprise"}
CKPLUS_FOLDERS = {"anger": "angry", "contempt": CONTEMPT, "disgust": "disgust", "fear": "fear",
                  "happy": "happy", "sadness": "sad", "surprise": "surprise"}  # CK+48/<folder>/
JAFFE_CODES = {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral",
               "SA": "sad", "SU": "surprise"}  # KA.AN1.39.tiff
FERG_EXPRESSIONS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "joy": "happy",
                    "neutral": "neutral", "sadness": "sad", "surprise": "surprise"}  # aia/aia_anger/
# FER2013's Usage (fer2013.csv's column; the prefix of each file name in Kaggle's image download,
# train/angry/Training_10118481.jpg) and the split it means.
FER2013_USAGE_SPLITS = {"Training": "train", "PublicTest": "eval", "PrivateTest": "test"}
# Kaggle's FER2013 as images (msambare/fer2013: train/ and test/ of class folders) names its class
# folders by FER2013's own class names.
FER2013_FOLDERS = {name: name for name in EMOTIONS}
# fer2013new.csv vote columns in file order; "unknown" and "NF" (not a face) are no class.
FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                 "contempt", "unknown", "NF")
FERPLUS_TO_EMOTION = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
                      "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear",
                      "contempt": CONTEMPT}

# A data root of synthetic faces (deep-emotion demo-data) says so in this file; ingestion records it
# and model cards warn that their numbers say nothing about real faces.
SYNTHETIC_MARKER = "SYNTHETIC_DEMO_DATA.txt"

# What operating systems leave in folders and in the archives made from them: macOS's __MACOSX/
# copies of every file's resource fork ("._name", which would otherwise look like a second copy of
# each dataset), Finder and Explorer caches. Ingestion names them as such and `deep-emotion predict`
# skips them; neither searches or reads them.
OS_METADATA = re.compile(r"^(__MACOSX|\._.*|\.DS_Store|Thumbs\.db|desktop\.ini|\.Spotlight-V100|\.Trashes|"
                         r"\.fseventsd|\.TemporaryItems)$", re.IGNORECASE)

# Untrusted images (the served model's serving_images signature, `deep-emotion predict`) are refused
# before they are decoded when their header claims more pixels, or the request carries more bytes:
# a 0.4 MB PNG can claim 20000x20000 pixels (7 GB decoded). The export records the budgets it was
# built with in the model itself.
MAX_IMAGE_PIXELS = 16_000_000
MAX_IMAGE_BYTES = 20 * 2 ** 20
