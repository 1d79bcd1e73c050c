"""What a user can choose about ingestion, and how it travels through TFX's custom_config.

TFX's FileBasedExampleGen takes `custom_config` as a CustomConfig proto holding an `Any`; the options
ride in it as a `google.protobuf.Struct`, so the pipeline compiles for Kubeflow V2 unchanged.
"""
import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from contract.data import CONTEMPT, EMOTIONS, SPLITS

# How a folder holds an image dataset (image_folders.py lists each); the ones face_crop may name.
CKPLUS48, CKPLUS_ORIGINAL, JAFFE, FERG = "ckplus48", "ckplus-original", "jaffe", "ferg"
FER2013_IMAGES = "fer2013-images"  # Kaggle's FER2013 as image files: train/angry/Training_10118481.jpg
FACE_CROP_LAYOUTS = (CKPLUS_ORIGINAL, JAFFE, FERG)  # whole frames or portraits; CK+48 and FER2013 are crops already

CODE_FINGERPRINT_KEY = "code_fingerprint"
# CK+ and FER+ have a seventh expression FER2013 lacks. Their label maps name it so.
CONTEMPT_EXCLUDED = "contempt: no FER2013 class (set contempt_as to map it)"


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    """Ingestion options (all optional; the defaults are the documented behaviour).

    use_ferplus_labels: relabel fer2013.csv / icml_face_data.csv rows by the FER+ majority vote of the
        fer2013new.csv beside them (rows whose majority is unknown or not-a-face are excluded, counted).
    contempt_as: FER2013 class to map contempt (CK+, FER+) onto; None (default) excludes contempt, counted.
        FER2013 has no contempt class, so "including" it needs a target class, hence a name, not a flag.
    bad_record_budget: 0 (default) fails the run on any bad record; N > 0 quarantines up to N bad
        records (with file, line or path, and defect) and fails only beyond N.
    split_fractions: train/eval/test shares for sources without their own split (subject-disjoint
        for CK+, JAFFE, FERG; content hash for Kaggle train.csv). FER2013's Usage column is kept.
    split_seed: changes which subjects land in which split, deterministically.
    max_image_pixels: images whose header claims more pixels are rejected before decoding
        (decompression bombs). Face datasets here are at most 640x490.
    face_crop: image layouts whose images go through the face stage (faces/: the largest face,
        FER2013-framed, eyes level) instead of being resized whole: "ckplus-original" (640x490
        frames; on by default), "jaffe" and "ferg" (portraits; off by default). An image where no
        face is found is a bad record. FER2013 rows and CK+48 are crops already.
    ckplus_peak_frames: original CK+: how many of a sequence's last frames (up to its labelled
        peak frame) get the sequence's label (3, as CK+48 has).
    ckplus_first_frame_neutral: original CK+: each labelled sequence's first frame also counts,
        as neutral.
    max_archive_member_bytes: an archive's image member larger than this is refused before it is read
        (CSV members, FER2013's 287 MB among them, are streamed a line at a time, each line capped).
    """
    use_ferplus_labels: bool = False
    contempt_as: Optional[str] = None
    bad_record_budget: int = 0
    split_fractions: Tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    max_image_pixels: int = 25_000_000
    face_crop: Tuple[str, ...] = (CKPLUS_ORIGINAL,)
    ckplus_peak_frames: int = 3
    ckplus_first_frame_neutral: bool = False
    max_archive_member_bytes: int = 64 * 2 ** 20

    def __post_init__(self):
        if self.contempt_as is not None and self.contempt_as not in EMOTIONS:
            raise ValueError(f"contempt_as={self.contempt_as!r}: must be one of {', '.join(EMOTIONS)} or None")
        if self.bad_record_budget < 0:
            raise ValueError(f"bad_record_budget={self.bad_record_budget}: must be >= 0")
        if len(self.split_fractions) != len(SPLITS) or min(self.split_fractions) < 0 or abs(
                sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"split_fractions={self.split_fractions}: need {len(SPLITS)} shares "
                             f"({'/'.join(SPLITS)}) >= 0 that sum to 1")
        if self.max_image_pixels <= 0:
            raise ValueError(f"max_image_pixels={self.max_image_pixels}: must be > 0")
        unknown = sorted(set(self.face_crop) - set(FACE_CROP_LAYOUTS))
        if unknown:
            raise ValueError(f"face_crop={list(self.face_crop)}: {', '.join(unknown)} cannot be face-cropped; "
                             f"choose from {', '.join(FACE_CROP_LAYOUTS)}")
        if self.ckplus_peak_frames < 1:
            raise ValueError(f"ckplus_peak_frames={self.ckplus_peak_frames}: must be >= 1")
        if self.max_archive_member_bytes <= 0:
            raise ValueError(f"max_archive_member_bytes={self.max_archive_member_bytes}: must be > 0")

    def emotion_id(self, name: str) -> Optional[int]:
        """FER2013 class id of an emotion name or CONTEMPT; None when the record must be excluded."""
        if name == CONTEMPT:
            return None if self.contempt_as is None else EMOTIONS.index(self.contempt_as)
        return EMOTIONS.index(name)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "IngestOptions":
        """Builds options from a plain dict (JSON numbers arrive as floats), refusing unknown keys."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown ingest option(s) {', '.join(unknown)}; known: {', '.join(fields)}")
        kwargs = dict(values)
        for name in ("bad_record_budget", "split_seed", "max_image_pixels", "ckplus_peak_frames",
                     "max_archive_member_bytes"):
            if name in kwargs:
                kwargs[name] = int(kwargs[name])
        if "split_fractions" in kwargs:
            kwargs["split_fractions"] = tuple(float(x) for x in kwargs["split_fractions"])
        if isinstance(kwargs.get("face_crop"), str):  # "ckplus-original,jaffe" from a setting
            kwargs["face_crop"] = tuple(x.strip() for x in kwargs["face_crop"].split(",") if x.strip())
        elif "face_crop" in kwargs:
            kwargs["face_crop"] = tuple(kwargs["face_crop"])
        for name in ("use_ferplus_labels", "ckplus_first_frame_neutral"):
            if name in kwargs:
                kwargs[name] = bool(kwargs[name])
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        values["split_fractions"] = list(self.split_fractions)
        values["face_crop"] = list(self.face_crop)
        return values

    def to_custom_config(self, code_fingerprint: Optional[str] = None):
        """The example_gen_pb2.CustomConfig that FileBasedExampleGen takes (imported here: `--help` stays fast).

        code_fingerprint rides along so that TFX's cache key changes with the executor's code
        (pipeline/code_fingerprint.py); the executor ignores it.
        """
        from google.protobuf import struct_pb2
        from tfx.proto import example_gen_pb2

        struct = struct_pb2.Struct()
        struct.update(self.to_dict())
        if code_fingerprint:
            struct.update({CODE_FINGERPRINT_KEY: code_fingerprint})
        config = example_gen_pb2.CustomConfig()
        config.custom_config.Pack(struct)
        return config

    @classmethod
    def from_custom_config_json(cls, custom_config_json: Optional[str]) -> "IngestOptions":
        """Reads the options from the JSON form TFX passes in exec_properties['custom_config']."""
        from google.protobuf import json_format, struct_pb2
        from tfx.proto import example_gen_pb2
        from tfx.utils import proto_utils

        if not custom_config_json:
            return cls()
        config = proto_utils.json_to_proto(custom_config_json, example_gen_pb2.CustomConfig())
        if not config.HasField("custom_config"):
            return cls()
        struct = struct_pb2.Struct()
        if not config.custom_config.Unpack(struct):
            raise ValueError(f"custom_config must hold a google.protobuf.Struct of ingest options, "
                             f"got {config.custom_config.type_url}")
        values = json_format.MessageToDict(struct)
        values.pop(CODE_FINGERPRINT_KEY, None)
        return cls.from_dict(values)
