"""The face stage's speed on this machine: faces per second through detect + crop + classify, on
640x480 frames holding 1-3 synthetic faces of 96-200 px.

    TF_USE_LEGACY_KERAS=1 python -m bench.faces [--model out/serving/deep-emotion] [--frames 60] [--runs 3]

Two searches (faces/detect.py): the fast one predict uses for video frames (the whole frame; crops
only when it finds nothing) and the thorough one for photos (the whole frame and overlapping crops).
Classification is the served model's serving_default on the 48x48 crops, batched as predict does.
Recall is against the scenes' own face boxes. Every figure is the median of --runs runs.
"""
from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import argparse  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def scenes(count, seed=0):
    from deep_emotion.demo_data import scenes as scene_lib
    from deep_emotion.demo_data.faces import render_faces

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        n = int(rng.integers(1, 4))
        sides = rng.integers(96, 201 if n < 3 else 161, size=n)
        tiles = [render_faces([int(rng.integers(0, 7))], seed=[seed, i, k], size=int(s), nuisance=0.5)[0]
                 for k, s in enumerate(sides)]
        frames.append(scene_lib.scene(tiles, rng))
    return frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="out/serving/deep-emotion", help="a SavedModel or serving directory")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from components.pusher.serving_dir import resolve_model_dir
    from deep_emotion.predict import Classifier
    from faces import crop, detect

    frames = scenes(args.frames)
    classifier = Classifier(resolve_model_dir(args.model))
    total_faces = sum(len(boxes) for _, boxes in frames)
    detect.find_faces(frames[0][0], thorough=True)  # warm-up: interpreters, first classification
    classifier.pixels([np.zeros((48, 48), np.uint8)])
    print(f"{args.frames} frames of 640x480 with {total_faces} faces; {os.cpu_count()} cores; model {args.model}")
    print(f"{'search':<10}{'frames/s':>10}{'faces/s':>10}{'detect ms/frame':>17}{'classify ms/face':>18}{'recall':>8}")
    for thorough in (False, True):
        rates, detect_ms, classify_ms, recalls = [], [], [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            found_per_frame = [detect.find_faces(frame, thorough) for frame, _ in frames]
            detected = time.perf_counter()
            crops = [crop.fer_crop(frame, face) for (frame, _), found in zip(frames, found_per_frame) for face in found]
            classifier.pixels(crops)
            done = time.perf_counter()
            hits = 0
            for (_, boxes), found in zip(frames, found_per_frame):
                for x, y, side in boxes:
                    hits += any(x <= f.box[0] + f.box[2] / 2 <= x + side and y <= f.box[1] + f.box[3] / 2 <= y + side
                                for f in found)
            rates.append((len(frames) / (done - started), len(crops) / (done - started)))
            detect_ms.append(1e3 * (detected - started) / len(frames))
            classify_ms.append(1e3 * (done - detected) / max(1, len(crops)))
            recalls.append(hits / total_faces)
        print(f"{'thorough' if thorough else 'fast':<10}{statistics.median(r[0] for r in rates):>10.1f}"
              f"{statistics.median(r[1] for r in rates):>10.1f}{statistics.median(detect_ms):>17.1f}"
              f"{statistics.median(classify_ms):>18.2f}{statistics.median(recalls):>8.1%}")
    print(f"command: TF_USE_LEGACY_KERAS=1 python -m bench.faces {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
