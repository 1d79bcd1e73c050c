"""Synthetic demo data: faces showing the seven FER2013 expressions, written in the real
datasets' formats (FER2013 CSV and relatives, CK+48, JAFFE, FERG-DB), since the real ones cannot
be downloaded here. `render_faces` draws faces; `generate` writes a data root."""
from deep_emotion.demo_data.faces import CONTEMPT, render_faces  # noqa: F401
from deep_emotion.demo_data.generate import DEFAULT_FORMATS, FORMATS, generate  # noqa: F401
