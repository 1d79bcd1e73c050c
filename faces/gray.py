"""8-bit gray levels from any image Pillow opens, in one place: what ingestion trains on and what
`deep-emotion predict` sends to the model are reduced the same way (and as the serving signature
reduces a 16-bit PNG)."""
import numpy as np
from PIL import Image


class NoGrayScale(ValueError):
    """The image's values have no agreed gray scale (floats outside [0, 1], integers over 16 bits):
    refused rather than guessed, so a caller can name the file and go on."""


def to_gray(image: Image.Image) -> Image.Image:
    """The image as 8-bit grayscale ("L"), its gray levels scaled from the depth it was stored at.

    Pillow's convert("L") clips high-bit-depth modes instead of scaling them, so a 16-bit image
    (0..65535) would come out solid white. Those modes are reduced here:
    - "I;16", "I;16B", "I;16L" (16-bit PNG and TIFF): the top 8 bits (value >> 8), which is how the
      serving signature's tf.io.decode_image reduces a 16-bit PNG, so both see the same levels;
    - "I" (32-bit integer: 16-bit PGM, integer TIFF): Pillow does not keep the stored depth, so the
      values say it: all within 0..255 are 8-bit levels as they are, within 0..65535 16-bit levels
      (>> 8, as above); negative values or values over 16 bits have no agreed gray scale: refused;
    - "F" (32-bit float TIFF): values in [0, 1] are scaled by 255; any other range is refused.
    Other modes (1, L, P, RGB, RGBA, LA, CMYK...) are 8-bit already: convert("L") as before.
    """
    mode = image.mode
    if not (mode == "I" or mode.startswith("I;16") or mode == "F"):
        return image.convert("L")
    values = np.asarray(image)  # decodes: the pixel budget was checked on the header before this
    if mode == "F":
        if values.size and not np.isfinite(values).all():
            raise NoGrayScale("a mode F (32-bit float) image with NaN or infinite values: no gray levels to take "
                              "from it")
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > 1:
            raise NoGrayScale(f"a mode F (32-bit float) image with values from {low:g} to {high:g}: only floats "
                              "in [0, 1] have an agreed gray scale (save it as 8- or 16-bit)")
        return Image.fromarray(np.rint(values * np.float32(255)).astype(np.uint8))
    if mode == "I":
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 0xFFFF:
            raise NoGrayScale(f"a mode I (32-bit integer) image with values from {low} to {high}: only 8- or "
                              "16-bit levels (0..65535) have an agreed gray scale")
        shift = 8 if high > 0xFF else 0
    else:
        shift = 8  # I;16*: the container is 16 bits, whatever the values
    return Image.fromarray((values >> shift).astype(np.uint8))
