"""The spatial transformer's bilinear sampler (trainer/stn.py) as a compiled CPU kernel, for the
training augmentation's warp (trainer.train.warp_for_augmentation).

Why our own kernel, compiled by numba: on a CPU each slice of a batch is warped inside the train
step on its own core (trainer.train.data_parallel_train_step), and nothing on this stack warps a
batch of small images cheaply there. TensorFlow's ImageProjectiveTransformV3 took 37-45 us a 48x48
image on one core, the model's own gather-based sampler 35-40 us (with or without XLA); OpenCV's
warpAffine 11 us, image by image through Python, whose loops in the two slices then hand the GIL
back and forth. This kernel warps a whole slice in one call that releases the GIL, in 4.5-6.5 us
an image on one core, and it is the sampler's arithmetic, bit for bit (tested against
trainer.stn.spatial_transform): the same coordinates, clipping, zero border and interpolation order
in float32, so the augmentation moves faces exactly as the model's transformer would. Figures:
docs/design.md.

numba compiles the kernel on its first call in a process (about 1.5 s) and writes nothing.
"""
import numba
import numpy as np


@numba.njit(nogil=True, boundscheck=False, error_model="numpy")
def _warp_planes(planes, matrices, out):
    """planes float32 [N, H, W] -> out [N, H, W]: output pixel (column, row) of plane i samples the
    input at matrices[i] @ (column, row, 1) (pixel centres at integers), bilinear, zeros outside;
    trainer.stn._sample's steps in its order. Indices are unsigned: numba then skips its
    negative-index wrap-around, which kept the loops from vectorising (4x slower)."""
    count, height, width = planes.shape
    u = np.uint64
    rows, columns = u(height), u(width)
    pixels = rows * columns
    stride = columns + u(3)  # a zero border: one pixel above and left, two below and right
    padded = np.zeros((height + 3) * (width + 3), np.float32)
    source, target = planes.reshape(count * height * width), out.reshape(count * height * width)
    weight_x, weight_y = np.empty(height * width, np.float32), np.empty(height * width, np.float32)
    corner = np.empty(height * width, np.uint64)
    low, right, bottom = np.float32(-1.0), np.float32(width), np.float32(height)
    for i in range(u(count)):
        start = i * pixels
        for row in range(rows):
            line = (row + u(1)) * stride + u(1)
            for column in range(columns):
                padded[line + column] = source[start + row * columns + column]
        a, b, c = matrices[i, 0, 0], matrices[i, 0, 1], matrices[i, 0, 2]
        d, e, f = matrices[i, 1, 0], matrices[i, 1, 1], matrices[i, 1, 2]
        for row in range(rows):
            b_row, e_row = b * np.float32(row), e * np.float32(row)
            for column in range(columns):
                x = a * np.float32(column) + b_row + c
                y = d * np.float32(column) + e_row + f
                if x != x:  # NaN (a diverged theta): outside, as the sampler sends it
                    x = low
                if y != y:
                    y = low
                x = np.minimum(np.maximum(x, low), right)  # beyond [-1, size] the value is 0 anyway
                y = np.minimum(np.maximum(y, low), bottom)
                x0, y0 = np.floor(x), np.floor(y)
                p = row * columns + column
                weight_x[p], weight_y[p] = x - x0, y - y0
                corner[p] = u(np.int64(y0) + 1) * stride + u(np.int64(x0) + 1)
        for p in range(pixels):
            k = corner[p]
            top_left, top_right = padded[k], padded[k + u(1)]
            bottom_left, bottom_right = padded[k + stride], padded[k + stride + u(1)]
            top = top_left + weight_x[p] * (top_right - top_left)
            under = bottom_left + weight_x[p] * (bottom_right - bottom_left)
            target[start + p] = top + weight_y[p] * (under - top)
    return out


def warp_images(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """images [B, H, W, C] warped by matrices [B, 2, 3] (trainer.stn.pixel_affine's: an output
    pixel (column, row, 1) -> the input position it samples), float32, as trainer.stn's sampler."""
    batch, height, width, channels = images.shape
    planes = np.ascontiguousarray(np.moveaxis(np.asarray(images, np.float32), 3, 1)).reshape(-1, height, width)
    matrices = np.ascontiguousarray(np.repeat(np.asarray(matrices, np.float32), channels, axis=0))
    out = _warp_planes(planes, matrices, np.empty_like(planes))
    return np.ascontiguousarray(np.moveaxis(out.reshape(batch, channels, height, width), 1, 3))
