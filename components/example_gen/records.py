"""The two things ingestion produces per input record: a canonical tf.Example, or a Reject.

Examples are encoded in batches by tfx_bsl's C++ RecordBatch -> tf.Example encoder: building a
2,304-value int64 feature through the Python protobuf API costs about 0.4 ms a row here, which
alone would cap a FER2013 CSV below the 2,000 rows/s target.
"""
import dataclasses
import json
from typing import List, Optional, Sequence

import numpy as np
import pyarrow as pa

from contract.data import FACE_BOX, IMAGE_ID, LABEL, LABEL_SHARES, NUM_CLASSES, NUM_PIXELS, PIXELS, SOURCE, SUBJECT

_encoder = None


def encode_examples(pixels: np.ndarray, emotions: Sequence[int], source: str,
                    image_ids: Sequence[str], subjects: Sequence[str],
                    label_shares: Optional[np.ndarray] = None,
                    face_boxes: Optional[np.ndarray] = None) -> List[bytes]:
    """Serialized canonical tf.Examples (docs/design.md, "The data contract") for n records of one source.

    pixels: [n, NUM_PIXELS] integers already checked to lie in 0..255.
    label_shares: [n, NUM_CLASSES] label distribution (FER+ votes), or None for hard labels only.
    face_boxes: [n, 4] where the face stage found each face in its source image, or None.
    """
    global _encoder  # one C++ encoder per worker process
    if _encoder is None:
        from tfx_bsl.coders import example_coder  # pylint: disable=import-outside-toplevel
        _encoder = example_coder.RecordBatchToExamplesEncoder()
    n = len(emotions)
    pixels = np.ascontiguousarray(pixels, dtype=np.int64).reshape(n, NUM_PIXELS)
    one_each = pa.array(np.arange(n + 1, dtype=np.int32))

    def single(values, arrow_type):
        return pa.ListArray.from_arrays(one_each, pa.array(values, arrow_type))

    batch = pa.RecordBatch.from_arrays(
        [pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * NUM_PIXELS),
                                  pa.array(pixels.reshape(-1))),
         single(np.asarray(emotions, dtype=np.int64), pa.int64()),
         single([source.encode()] * n, pa.binary()),
         single([i.encode() for i in image_ids], pa.binary()),
         single([s.encode() for s in subjects], pa.binary())]
        + [_float_lists(values, width) for values, width in ((label_shares, NUM_CLASSES), (face_boxes, 4))
           if values is not None],
        [PIXELS, LABEL, SOURCE, IMAGE_ID, SUBJECT] + [name for name, values in ((LABEL_SHARES, label_shares),
                                                                              (FACE_BOX, face_boxes))
                                                      if values is not None])
    return _encoder.encode(batch)


def _float_lists(values: np.ndarray, width: int):
    n = len(values)
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * width),
                                    pa.array(np.asarray(values, np.float32).reshape(-1)))


@dataclasses.dataclass(frozen=True)
class Reject:
    """A record (CSV row, image, or whole file) that could not be ingested, and why.

    file: the path as found under the data root; line: 1-based line in a CSV (None for images and
    whole files). fatal: a defect no bad-record budget may excuse (e.g. FER+ rows out of step).
    """
    source: str
    file: str
    line: Optional[int]
    defect: str
    fatal: bool = False

    def describe(self) -> str:
        where = self.file if self.line is None else f"{self.file} line {self.line}"
        return f"{where}: {self.defect}"

    def sort_key(self):
        return (self.file, self.line or 0, self.defect)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


class IngestError(Exception):
    """Ingestion cannot produce a complete, trustworthy output; the message says what to fix."""
