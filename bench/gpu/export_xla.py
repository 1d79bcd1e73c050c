"""Export Deep-Emotion's train and inference steps as XLA HLO, for a GPU machine without TensorFlow.

The lent GPU machine has jaxlib but no TensorFlow, and TF's CUDA wheels (~1.6 GB) cannot be
carried there. `tf.function(jit_compile=True)` is TF's own lowering of our code to XLA, so we
take its pre-optimisation HLO here: Model.train_step as fit runs it per batch (forward, loss with
L2, gradients, the loss-scaled Adam update, metric updates) under mixed precision, and
`model(images, training=False)`. bench/gpu/run_xla.py compiles that HLO with jaxlib's XLA:GPU:
our graph on the jit_compile path, minus TF's runtime overhead and input pipeline.

    TF_USE_LEGACY_KERAS=1 python -m bench.gpu.export_xla --out .gpu [--layouts paper reference]
        [--train-batches 1024 4096] [--infer-batches 1024 8192] [--reference-steps 3]

Writes into --out, per layout: one HloModuleProto per program (<layout>_train_b<B>.hlo.pb,
<layout>_infer_b<B>.hlo.pb), the initial values of the captured variables (<layout>_state.npz),
and, with --reference-steps, two verification twins of the train program (Dropout drawing from a
Generator; mixed precision and float32) and what TF itself computes with all these tf.functions
on the same faces (*_tf_reference.npz, for run_xla.py --mode verify); manifest.json says what
every HLO parameter and output is (from the HLO's own signature and input/output aliasing). TF
lowers for the CPU here (it refuses another platform when variables are captured); the
pre-optimisation HLO has no platform-specific custom calls, which is checked.
"""
from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tensorflow.compiler.xla import xla_data_pb2  # noqa: E402
from tensorflow.compiler.xla.service import hlo_pb2  # noqa: E402

from bench.gpu.data import synthetic_faces  # noqa: E402
from contract.data import IMAGE_SIZE  # noqa: E402
from trainer.model import LAYOUTS, build_model  # noqa: E402
from trainer.train import HParams, compile_for_training  # noqa: E402

MANIFEST = "manifest.json"
# HLO element types the exported programs use, as numpy dtype names.
_NUMPY_DTYPES = {"PRED": "bool", "S32": "int32", "S64": "int64", "U32": "uint32", "U64": "uint64",
                 "F16": "float16", "F32": "float32", "F64": "float64"}


def compiled_model(layout, seed, generator_dropout=False, mixed_precision=True):
    """Our model compiled as trainer/train.py compiles it (compile_for_training; under mixed
    precision the optimiser is Adam wrapped in tf_keras's dynamic LossScaleOptimizer).

    generator_dropout: draw Dropout's mask from a tf.random.Generator (a Philox state variable)
    instead of the stateful RandomUniform op our model uses. Only for the verification twin: XLA
    lowers RandomUniform to its `rng` op, whose stream is each XLA build's own (the key mixes in
    the op's id), so TF and jaxlib draw different masks; the Generator's stream is defined by
    its state, which both sides then share.
    """
    experimental = tf_keras.backend.experimental
    was_enabled = experimental.is_tf_random_generator_enabled()
    if generator_dropout:
        experimental.enable_tf_random_generator()
    try:  # layers choose their random generator when constructed
        model = build_model(layout, mixed_precision=mixed_precision, seed=seed)
    finally:
        (experimental.enable_tf_random_generator if was_enabled else experimental.disable_tf_random_generator)()
    compile_for_training(model, HParams())
    return model


def step_functions(model):
    """(train_step(images, labels) -> (loss, accuracy), infer_step(images) -> probabilities).

    loss and accuracy are fit's running means (its Mean metrics), which fit resets each epoch.
    """
    @tf.function(jit_compile=True)
    def train_step(images, labels):
        logs = model.train_step((images, labels))
        return logs["loss"], logs["accuracy"]

    @tf.function(jit_compile=True)
    def infer_step(images):
        return model(images, training=False)

    return train_step, infer_step


def tracked_variables(model):
    """{id(handle): (readable unique path, variable, group)} for every variable of the model
    (with a dropout Generator's state), its optimiser (loss scale, Adam slots, learning rate) and
    its metrics."""
    found, seen = {}, set()

    def walk(obj, path, group):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, tf.Variable):
            found.setdefault(id(obj.handle), (path, obj, group))
            return
        if hasattr(obj, "_trackable_children"):
            for name, child in obj._trackable_children().items():
                walk(child, f"{path}/{name}", group)

    for group, listed in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for variable in listed:  # their own names are readable and unique: conv3/kernel:0, m/conv3/kernel:0
            found[id(variable.handle)] = (f"{group}/{variable.name}", variable, group)
            seen.add(id(variable))
    for metric in model.metrics:
        walk(metric, f"metrics/{metric.name}", "metric")
    walk(model.optimizer, "optimizer", "optimizer")
    for layer in model.layers:  # what model.variables leaves out: a Dropout layer's Generator state
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if generator is not None:
            found[id(generator.state.handle)] = (f"model/{layer.name}/generator_state", generator.state, "model")
    return found


def _shape(shape_proto):
    return {"shape": list(shape_proto.dimensions),
            "dtype": _NUMPY_DTYPES[xla_data_pb2.PrimitiveType.Name(shape_proto.element_type)]}


def opcode_counts(proto):
    return collections.Counter(i.opcode for c in proto.computations for i in c.instructions)


def lower(function, specs):
    """(HloModuleProto bytes, the proto, captured inputs in HLO parameter order after `specs`)."""
    concrete = function.get_concrete_function(*specs)
    serialized = function.experimental_get_compiler_ir(*specs)(stage="hlo_serialized")
    proto = hlo_pb2.HloModuleProto.FromString(serialized)
    custom_calls = sorted({i.custom_call_target for c in proto.computations for i in c.instructions
                           if i.opcode == "custom-call"})
    if custom_calls:
        raise RuntimeError(f"{proto.name}: the HLO holds custom calls {custom_calls}; they may not "
                           "exist on the GPU backend")
    parameters = proto.host_program_shape.parameters
    captured = concrete.captured_inputs
    if len(parameters) != len(specs) + len(captured):
        raise RuntimeError(f"{proto.name}: {len(parameters)} HLO parameters, expected {len(specs)} "
                           f"inputs + {len(captured)} captured variables")
    return serialized, proto, captured


def describe_program(kind, batch, proto, input_names, output_names, captured, state_index, state):
    """The manifest entry: every HLO parameter is an input or a state slot, every output a named
    result or the new value of a state slot (from the HLO's input_output_alias, not guessed)."""
    params = []
    for number, shape_proto in enumerate(proto.host_program_shape.parameters):
        entry = _shape(shape_proto)
        if number < len(input_names):
            entry["input"] = input_names[number]
        else:
            slot = state_index[id(captured[number - len(input_names)])]
            if (entry["shape"], entry["dtype"]) != (state[slot]["shape"], state[slot]["dtype"]):
                raise RuntimeError(f"{proto.name}: parameter {number} is {entry}, but the variable captured "
                                   f"there, {state[slot]['name']}, is {state[slot]}")
            entry["state"] = slot
        params.append(entry)
    aliased = {tuple(e.output_shape_index): e.parameter_number for e in proto.input_output_alias.entries}
    result = proto.host_program_shape.result
    results = result.tuple_shapes if result.element_type == xla_data_pb2.TUPLE else [result]
    outputs = []
    for number, shape_proto in enumerate(results):
        entry = _shape(shape_proto)
        if number < len(output_names):
            entry["result"] = output_names[number]
        elif (number,) in aliased and "state" in params[aliased[(number,)]]:
            entry["state"] = params[aliased[(number,)]]["state"]
        else:
            raise RuntimeError(f"{proto.name}: output {number} is neither a result nor an update of a variable")
        outputs.append(entry)
    return {"kind": kind, "batch": batch, "params": params, "outputs": outputs}


class Export:
    """One model's lowered programs and state, written as `<prefix>_*` files into `out_dir`."""

    def __init__(self, model, prefix, train_batches, infer_batches):
        self.model, self.prefix = model, prefix
        self.train_step, self.infer_step = step_functions(model)
        image_spec = lambda batch: tf.TensorSpec([batch, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)  # noqa: E731
        self.lowered = []
        for batch in train_batches:
            self.lowered.append(("train", batch, ("images", "labels"), ("loss", "accuracy"),
                                 *lower(self.train_step, (image_spec(batch), tf.TensorSpec([batch], tf.int64)))))
        for batch in infer_batches:
            self.lowered.append(("infer", batch, ("images",), ("probabilities",),
                                 *lower(self.infer_step, (image_spec(batch),))))
        # The state: every captured variable, read now, after tracing built the optimiser's slots
        # and before anything ran.
        variables = tracked_variables(model)
        self.state_index, self.state, self.initial = {}, [], {}
        for *_, captured in self.lowered:
            for handle in captured:
                if id(handle) in self.state_index:
                    continue
                if id(handle) not in variables:
                    raise RuntimeError(f"{prefix}: a captured resource {handle} is no variable of the model, "
                                       "its optimiser or its metrics")
                name, variable, group = variables[id(handle)]
                self.state_index[id(handle)] = len(self.state)
                self.initial[f"state_{len(self.state)}"] = variable.numpy()
                self.state.append({"name": name, "group": group, "shape": list(variable.shape),
                                   "dtype": variable.dtype.name})
        self.variables = {handle: variables[handle][1] for handle in self.state_index}

    def opcodes(self, kind):
        return opcode_counts(next(proto for k, _, _, _, _, proto, _ in self.lowered if k == kind))

    def write(self, out_dir, log=print):
        programs = []
        for kind, batch, input_names, output_names, serialized, proto, captured in self.lowered:
            program = describe_program(kind, batch, proto, input_names, output_names, captured,
                                       self.state_index, self.state)
            program["file"] = f"{self.prefix}_{kind}_b{batch}.hlo.pb"
            with open(os.path.join(out_dir, program["file"]), "wb") as f:
                f.write(serialized)
            programs.append(program)
            log(f"{program['file']}: {len(serialized) / 1e6:.2f} MB, {len(program['params'])} parameters, "
                f"{len(program['outputs'])} outputs")
        state_file = f"{self.prefix}_state.npz"
        np.savez(os.path.join(out_dir, state_file), **self.initial)
        return {"state_file": state_file, "state": self.state, "programs": programs}

    def reference_run(self, out_dir, faces, seed, train_batch, steps, infer_batch=None):
        """TF runs the very tf.functions lowered here (XLA on the CPU) from the exported initial
        state: probabilities before training, per-step outputs, the state after the first and
        after `steps` steps, and probabilities with the latter. Call after write(): it changes the variables."""
        images, labels = synthetic_faces(faces, seed)
        recorded = {}
        if infer_batch:
            recorded["initial_probabilities"] = self.infer_step(images[:infer_batch]).numpy()
        losses, accuracies = [], []
        for step in range(steps):
            batch = slice(step * train_batch, (step + 1) * train_batch)
            loss, accuracy = self.train_step(images[batch], labels[batch])
            losses.append(float(loss))
            accuracies.append(float(accuracy))
            if step == 0:
                recorded.update({f"step1_state_{slot}": self.variables[handle].numpy()
                                 for handle, slot in self.state_index.items()})
        recorded.update({f"state_{slot}": self.variables[handle].numpy()
                         for handle, slot in self.state_index.items()})
        if infer_batch:
            recorded["probabilities"] = self.infer_step(images[:infer_batch]).numpy()
        file = f"{self.prefix}_tf_reference.npz"
        np.savez(os.path.join(out_dir, file), losses=np.array(losses), accuracies=np.array(accuracies), **recorded)
        return {"file": file, "faces": faces, "seed": seed, "steps": steps, "train_batch": train_batch,
                "infer_batch": infer_batch}


def export_layout(layout, out_dir, train_batches, infer_batches, reference_steps, seed, log=print):
    """Write one layout's programs, initial state and TF references; returns its manifest entry.

    With reference_steps, also two verification twins of the train program at the first train
    batch, with Dropout's mask drawn from a Generator so TF and jaxlib draw the same masks:
    "mixed" (otherwise the benchmark's program) and "float32" (no float16 rounding, so it must
    match TF to float32 accuracy), and what TF computes with all of them on the same faces.
    run_xla.py --verify replays them.
    """
    benchmark = Export(compiled_model(layout, seed), layout, train_batches, infer_batches)
    entry = benchmark.write(out_dir, log)
    entry["trainable_parameters"] = int(sum(np.prod(v.shape) for v in benchmark.model.trainable_variables))
    if not reference_steps:
        return entry
    train_batch, infer_batch = train_batches[0], infer_batches[0]
    faces = max(reference_steps * train_batch, infer_batch)
    entry["reference"] = benchmark.reference_run(out_dir, faces, seed, train_batch, reference_steps, infer_batch)
    entry["verify"] = {}
    for name, mixed_precision in (("mixed", True), ("float32", False)):
        twin = Export(compiled_model(layout, seed, generator_dropout=True, mixed_precision=mixed_precision),
                      f"{layout}_verify_{name}", [train_batch], [])
        entry["verify"][name] = twin.write(out_dir, log)
        ours, theirs = benchmark.opcodes("train"), twin.opcodes("train")
        entry["verify"][name]["opcodes_differing_from_benchmark"] = {
            op: [ours[op], theirs[op]] for op in sorted(set(ours) | set(theirs)) if ours[op] != theirs[op]}
        entry["verify"][name]["reference"] = twin.reference_run(out_dir, faces, seed, train_batch, reference_steps)
    log(f"{layout}: train HLO opcode counts that differ, benchmark vs mixed twin: "
        f"{entry['verify']['mixed']['opcodes_differing_from_benchmark']}")
    log(f"{layout}: TF references, {reference_steps} train steps at batch {train_batch}, "
        f"inference at batch {infer_batch}")
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the artefacts (created)")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--train-batches", nargs="+", type=int, default=[1024, 4096])
    parser.add_argument("--infer-batches", nargs="+", type=int, default=[1024, 8192])
    parser.add_argument("--reference-steps", type=int, default=3,
                        help="TF train steps to record for run_xla.py --verify (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    manifest = {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "mixed_precision": True,
                "learning_rate": HParams().learning_rate, "layouts": {}}
    for layout in args.layouts:
        manifest["layouts"][layout] = export_layout(layout, args.out, args.train_batches, args.infer_batches,
                                                    args.reference_steps, args.seed)
    with open(os.path.join(args.out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out}/ ({size / 2**20:.1f} MiB) in {time.perf_counter() - started:.0f} s; reproduce: "
          f"python -m bench.gpu.export_xla --out {args.out} --layouts {' '.join(args.layouts)} "
          f"--train-batches {' '.join(map(str, args.train_batches))} "
          f"--infer-batches {' '.join(map(str, args.infer_batches))} --reference-steps {args.reference_steps}")


if __name__ == "__main__":
    main()
