"""A container command for the run-local tests: reads the ExecutorInput KFP would pass (--executor_input
JSON), writes each output artifact's file, and an ExecutorOutput with metadata and output parameters.

    python fake_task.py --executor_input {{$}} [--fail]
It records what it was given in <output uri>/received.json, so tests can look at the ExecutorInput.
"""
import json
import os
import sys

executor_input = json.loads(sys.argv[sys.argv.index("--executor_input") + 1])
if "--fail" in sys.argv:
    print("fake_task: failing as asked", file=sys.stderr)
    sys.exit(3)
outputs = executor_input["outputs"]
produced = {"artifacts": {}, "parameterValues": {}}
for key, artifact_list in outputs.get("artifacts", {}).items():
    uri = artifact_list["artifacts"][0]["uri"]
    os.makedirs(uri, exist_ok=True)
    with open(os.path.join(uri, "received.json"), "w") as f:
        json.dump(executor_input, f)
    produced["artifacts"][key] = {"artifacts": [{"uri": uri, "metadata": {"count": 3, "note": "written"}}]}
for key in outputs.get("parameters", {}):
    produced["parameterValues"][key] = 7
os.makedirs(os.path.dirname(outputs["outputFile"]), exist_ok=True)
with open(outputs["outputFile"], "w") as f:
    json.dump(produced, f)
