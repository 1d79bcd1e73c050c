"""pipeline.local.BeamDagRunner: TFX's BeamDagRunner with each component run on a frozen heap, and
the heap unfrozen when the run ends (whether it succeeded or failed)."""
import gc
import json
import os

import pytest
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.orchestration import metadata
from tfx.v1.dsl import Pipeline

from pipeline import local


@component
def RecordHeap(record_to: Parameter[str], fail: Parameter[int] = 0):  # noqa: N802  # a TFX component name
    """Writes how many objects the garbage collector has frozen while this component runs."""
    with open(record_to, "w", encoding="utf-8") as f:
        json.dump({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}, f)
    if fail:
        raise RuntimeError("this component fails on purpose")


def _run(tmp_path, name, fail=0):
    record = tmp_path / f"{name}.json"
    pipeline = Pipeline(
        pipeline_name=name, pipeline_root=str(tmp_path / "root"),
        components=[RecordHeap(record_to=str(record), fail=fail)],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(tmp_path / f"{name}.sqlite")))
    local.BeamDagRunner().run(pipeline)
    return record


def test_components_run_on_a_frozen_heap_and_the_run_unfreezes_it(tmp_path):
    assert gc.get_freeze_count() == 0
    record = _run(tmp_path, "frozen-heap")
    seen = json.loads(record.read_text())
    # What the process held when the component started (TensorFlow, Beam, TFX: far more than 100k
    # objects) is out of the collector's full passes; the collector itself stays on.
    assert seen["frozen"] > 100_000 and seen["enabled"]
    assert gc.get_freeze_count() == 0  # collectable again once the run is over


def test_a_failed_run_unfreezes_the_heap_too(tmp_path):
    with pytest.raises(Exception, match="fails on purpose"):
        _run(tmp_path, "failing", fail=1)
    assert os.path.exists(tmp_path / "failing.json")
    assert gc.get_freeze_count() == 0
