"""The one face stage of ingestion, `deep-emotion predict` and the report: reduce any image to 8-bit
gray levels (gray.py: 16-bit and float images scaled, not clipped), find the faces in it
(detect.py), cut each into a FER2013-framed, eye-levelled 48x48 grayscale crop (crop.py), and read
video frames with their timestamps (video.py). On contract/ only; components/ and the top layer
use it.
"""
