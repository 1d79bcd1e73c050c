"""bench/gpu/export_xla.py: the HLO hand-over to the GPU machine stays complete as the model changes.

run_xla.py (jaxlib, no TensorFlow) trusts the manifest to say what every HLO parameter and output
is; if a model change added a variable the manifest could not place, or brought in a custom call,
the GPU figures would be wrong or fail there, where a rerun costs scarce device time.
"""
import json

import numpy as np

from bench.gpu import export_xla
from tensorflow.compiler.xla.service import hlo_pb2


def test_export_places_every_parameter_and_output_and_holds_no_custom_calls(tmp_path):
    export_xla.main(["--out", str(tmp_path), "--layouts", "paper", "--train-batches", "8",
                     "--infer-batches", "4", "--reference-steps", "0"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = manifest["layouts"]["paper"]
    assert manifest["mixed_precision"] is True and entry["trainable_parameters"] == 47_657
    state = np.load(tmp_path / entry["state_file"])
    assert len(state.files) == len(entry["state"])
    names = [s["name"] for s in entry["state"]]
    assert any("theta/kernel" in n for n in names) and any("/m/" in n for n in names)  # weights, Adam slots
    assert any("loss_scale" in n for n in names)

    programs = {(p["kind"], p["batch"]): p for p in entry["programs"]}
    assert set(programs) == {("train", 8), ("infer", 4)}
    train = programs["train", 8]
    assert [p.get("input") for p in train["params"][:2]] == ["images", "labels"]
    assert train["params"][0]["shape"] == [8, 48, 48, 1]
    assert all("input" in p or "state" in p for p in train["params"])
    updated = {o["state"] for o in train["outputs"] if "state" in o}
    trainable = {i for i, s in enumerate(entry["state"]) if s["group"] == "model" and "kernel" in s["name"]}
    assert trainable <= updated  # every kernel comes back updated
    assert [o["result"] for o in train["outputs"] if "result" in o] == ["loss", "accuracy"]
    assert programs["infer", 4]["outputs"] == [{"shape": [4, 7], "dtype": "float32", "result": "probabilities"}]

    for program in entry["programs"]:
        proto = hlo_pb2.HloModuleProto.FromString((tmp_path / program["file"]).read_bytes())
        assert len(proto.host_program_shape.parameters) == len(program["params"])
        assert not [i for c in proto.computations for i in c.instructions if i.opcode == "custom-call"]
