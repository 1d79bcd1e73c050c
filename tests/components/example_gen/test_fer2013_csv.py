"""FER2013-family rules without Beam: header recognition, pixel parsing, the FER+ vote."""
import numpy as np
import pytest

from components.example_gen.fer2013_csv import (FERPLUS, LABELLED, UNLABELLED, USAGE_SPLIT, _parse_pixel_batch,
                                                ferplus_majority, identify_csv, parse_pixels)
from deep_emotion.data_contract import NUM_PIXELS


@pytest.mark.parametrize("name,header,expected", [
    ("fer2013.csv", ["emotion", "pixels", "Usage"], (USAGE_SPLIT, ())),
    ("icml_face_data.csv", ["emotion", " Usage", " pixels"], (USAGE_SPLIT, ())),
    ("fer2013.csv", ["\ufeffemotion", "pixels", "Usage"], (USAGE_SPLIT, ())),
    ("train.csv", ["emotion", "pixels"], (LABELLED, ())),
    ("test.csv", ["pixels"], (UNLABELLED, ())),
    ("fer2013new.csv", ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger",
                        "disgust", "fear", "contempt", "unknown", "NF"], (FERPLUS, ())),
    ("renamed.csv", ["emotion", "pixels", "Usage"], (USAGE_SPLIT, ())),       # recognised by its header
    ("fer2013.csv", ["emotion", "pixels"], (USAGE_SPLIT, ("Usage",))),       # not a Kaggle train.csv
    ("train.csv", ["emotion", "Usage"], (LABELLED, ("pixels",))),
    ("train.csv", ["id", "price"], (None, ())),                              # someone else's train.csv
    ("scores.csv", ["name", "score"], (None, ())),
])
def test_csvs_are_recognised_by_name_and_header(name, header, expected):
    assert identify_csv(name, header) == expected


def test_parse_pixels_names_the_first_defect():
    values = np.arange(NUM_PIXELS) % 256
    np.testing.assert_array_equal(parse_pixels(" ".join(map(str, values))), values)
    np.testing.assert_array_equal(parse_pixels("\t".join(map(str, values)) + "  "), values)  # any whitespace
    with pytest.raises(ValueError, match="^2303 pixel values, expected 2304$"):
        parse_pixels(" ".join(map(str, values[1:])))
    with pytest.raises(ValueError, match=r"^pixel value 3 is not a number: '4\.5'$"):
        parse_pixels("1 2 4.5 " + " ".join(["0"] * (NUM_PIXELS - 3)))
    with pytest.raises(ValueError, match="^pixel value 2 is -1, outside 0..255$"):
        parse_pixels("0 -1 " + " ".join(["0"] * (NUM_PIXELS - 2)))


def test_the_fast_batch_parser_accepts_exactly_what_the_row_parser_accepts():
    rng = np.random.default_rng(0)
    good = [" ".join(map(str, rng.integers(0, 256, NUM_PIXELS))) for _ in range(3)]
    np.testing.assert_array_equal(_parse_pixel_batch(good), np.stack([parse_pixels(t) for t in good]))
    for bad in (good[0] + " 1", good[0].replace(" ", " x", 1), "256 " + good[0].split(" ", 1)[1],
                good[0] + " ", good[0].replace(" ", "\t")):
        assert _parse_pixel_batch(good[:2] + [bad]) is None  # sent to the row parser, which names or accepts it


@pytest.mark.parametrize("votes,winner", [
    ([0, 10, 0, 0, 0, 0, 0, 0, 0, 0], "happiness"),
    ([4, 0, 0, 0, 3, 2, 0, 0, 1, 0], None),           # 4 of 9 kept votes: no majority
    ([4, 1, 1, 1, 3, 0, 0, 0, 0, 0], "neutral"),      # single votes dropped: 4 of 7
    ([0, 0, 0, 0, 0, 0, 0, 0, 7, 3], "unknown"),
    ([0, 0, 0, 0, 0, 0, 0, 0, 2, 8], "NF"),
    ([0, 0, 0, 0, 0, 0, 0, 6, 4, 0], "contempt"),
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None),           # a tie is not a majority
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None),
])
def test_ferplus_majority_follows_the_ferplus_reference_rule(votes, winner):
    assert ferplus_majority(votes) == winner
