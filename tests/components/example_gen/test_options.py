"""Ingest options travel through TFX's custom_config unchanged; bad values are refused."""
import pytest
from tfx.utils import proto_utils

from components.example_gen.options import IngestOptions


def test_options_round_trip_through_custom_config_json():
    options = IngestOptions(use_ferplus_labels=True, contempt_as="disgust", bad_record_budget=12,
                            split_fractions=(0.7, 0.2, 0.1), split_seed=3, max_image_pixels=1000)
    as_json = proto_utils.proto_to_json(options.to_custom_config())
    assert IngestOptions.from_custom_config_json(as_json) == options
    assert IngestOptions.from_custom_config_json(None) == IngestOptions()
    with_code = proto_utils.proto_to_json(options.to_custom_config(code_fingerprint="ab12"))
    assert with_code != as_json and IngestOptions.from_custom_config_json(with_code) == options


@pytest.mark.parametrize("bad,message", [
    (dict(contempt_as="smug"), "contempt_as='smug': must be one of angry"),
    (dict(bad_record_budget=-1), "bad_record_budget=-1: must be >= 0"),
    (dict(split_fractions=(0.5, 0.2, 0.2)), "sum to 1"),
])
def test_bad_option_values_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        IngestOptions(**bad)


def test_unknown_option_names_are_refused():
    with pytest.raises(ValueError, match="unknown ingest option\\(s\\) include_contempt"):
        IngestOptions.from_dict({"include_contempt": True})
