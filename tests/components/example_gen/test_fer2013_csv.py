"""FER2013-family rules without Beam: header recognition, pixel parsing, the FER+ vote."""
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.example_gen.fer2013_csv import (FERPLUS, LABELLED, UNLABELLED, USAGE_SPLIT, _parse_pixel_batch,
                                                ferplus_majority, identify_csv, parse_pixels)
from contract.data import NUM_PIXELS


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
    ("fer2013.csv", ["0", "70 80 82", "Training"], (USAGE_SPLIT, ("emotion", "pixels", "Usage"))),  # no header
    ("icml_face_data.csv", ["emotion;pixels;Usage"], (USAGE_SPLIT, ("emotion", "pixels", "Usage"))),
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


# Tokens a real or damaged FER2013 row may hold: values, and what typing, encodings and tools do to them.
_GOOD_TOKENS = st.integers(0, 255).map(str)
_BAD_TOKENS = st.sampled_from(["256", "-1", "-0", "+7", "007", "4.5", "1e2", "x7", "", "٣", "0x1F", "nan",
                               "99999999999999999999", "1,2", "\u00a012"])
_SEPARATORS = st.sampled_from([" ", "  ", "\t", " \t"])


@st.composite
def _pixel_rows(draw):
    """A 2304-value row, mostly in FER2013's own layout (single spaces), with a few tokens damaged,
    dropped or added, and sometimes other separators or padding."""
    tokens = draw(st.lists(_GOOD_TOKENS, min_size=8, max_size=8)) * (NUM_PIXELS // 8)
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(tokens) - 1))
        action = draw(st.integers(0, 9))
        if action < 7:
            tokens[position] = draw(_BAD_TOKENS)
        elif action < 9:
            del tokens[position]
        else:
            tokens.insert(position, draw(_GOOD_TOKENS))
    if draw(st.integers(0, 9)) < 7:
        return " ".join(tokens)
    return draw(st.sampled_from(["", " "])) + draw(_SEPARATORS).join(tokens) + draw(st.sampled_from(["", " ", "\t"]))


def _row_parser(text):
    try:
        return parse_pixels(text)
    except ValueError:
        return None


_ROW = " ".join(["7"] * NUM_PIXELS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(rows=st.lists(_pixel_rows(), min_size=1, max_size=3))
@example(rows=[_ROW, _ROW.rsplit(" ", 1)[0]])           # one row short, beside a full one
@example(rows=[_ROW, _ROW + " 7"])                       # one row long
@example(rows=["0x1F " + _ROW.split(" ", 1)[1]])         # a hex value Arrow's cast would take
@example(rows=["1" * 20 + " " + _ROW.split(" ", 1)[1]])  # beyond int64
def test_the_fast_batch_parser_never_accepts_what_the_row_parser_refuses(rows):
    """The fast path may decline a batch (the row parser then reads it row by row), but what it
    accepts must be exactly what the row parser makes of every row."""
    fast = _parse_pixel_batch(rows)
    by_row = [_row_parser(text) for text in rows]
    if fast is not None:
        assert all(values is not None for values in by_row), rows
        np.testing.assert_array_equal(fast, np.stack(by_row))


def test_the_fast_batch_parser_takes_clean_rows():
    rng = np.random.default_rng(0)
    good = [" ".join(map(str, rng.integers(0, 256, NUM_PIXELS))) for _ in range(3)]
    np.testing.assert_array_equal(_parse_pixel_batch(good), np.stack([parse_pixels(t) for t in good]))


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
