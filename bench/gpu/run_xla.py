"""Time Deep-Emotion's exported train and inference steps with jaxlib's XLA: the GPU figures.

The lent GPU machine has jaxlib but no TensorFlow (nor room to carry it), so export_xla.py wrote
TF's own XLA lowering of our steps (Model.train_step under mixed precision with the loss-scaled
Adam, and inference) as HLO. Here jaxlib converts that HLO to StableHLO and compiles it for the
default device: the figures are our graph compiled by XLA, i.e. TF's jit_compile path, without
TF's runtime overhead and input pipeline (the faces sit on the device and are shuffled there).
Training is timed twice: with one launch of the executable per batch (what fit does with
jit_compile), and with the whole epoch in one launch (a jitted loop calling the same StableHLO,
as Keras's steps_per_execution would), which shows whether host dispatch limits the first. (XLA's
CPU backend runs that loop ~6x slower than separate launches, seen here; on the CPU the per-step
figure is the one.) Needs only jax/jaxlib, numpy, Pillow and the repo's numpy-only modules.

    python3 -m bench.gpu.run_xla --artifacts .gpu [--layouts paper reference] [--faces 28709]
        [--epochs 10] [--loops step epoch] [--infer-seconds 5] [--mode benchmark|verify|both]

--mode verify replays what TF computed with the same tf.functions (export_xla.py recorded it: same
initial state, same faces) and prints how far losses, variables and probabilities are from TF's.
"""
import argparse
import functools
import json
import os
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)  # the labels and the optimiser's step counters are int64

import jax.extend.core  # noqa: E402
import jax.extend.mlir  # noqa: E402
import numpy as np  # noqa: E402
from jax.interpreters import mlir  # noqa: E402
from jaxlib import xla_client  # noqa: E402
from jaxlib.mlir.dialects import func as func_dialect  # noqa: E402

from bench.gpu.data import FER2013_TRAIN_SIZE, synthetic_faces  # noqa: E402

MANIFEST = "manifest.json"
# Every measurement or check that failed: the run goes on (one device session has to bring back what
# it can), then exits non-zero naming them.
FAILURES = []


def _failed(what: str, error: Exception, log=print) -> str:
    line = f"{what}: FAILED {type(error).__name__}: {error}"
    FAILURES.append(line)
    log(line)
    return line


def without_copies(stablehlo):
    """The module with its `mhlo.copy` ops removed (each use reads the copied value instead).

    TF's lowering returns updated variables through HLO `copy`, which StableHLO has no op for:
    hlo_to_stablehlo keeps them as mhlo.copy, which jaxlib's GPU compile pipeline rejects
    ("failed to legalize operation 'mhlo.copy'"; its CPU pipeline accepts it). A copy of an
    immutable SSA value is the value itself, so dropping it changes nothing computed.
    """
    from jaxlib.mlir import ir

    with mlir.make_ir_context():
        module = ir.Module.parse(stablehlo)
        copies = []

        def collect(op):
            if op.operation.name == "mhlo.copy":
                copies.append(op.operation)
            return ir.WalkResult.ADVANCE

        module.operation.walk(collect)
        for copy in copies:
            copy.results[0].replace_all_uses_with(copy.operands[0])
            copy.erase()
        return str(module)


class Program:
    """One exported HLO module compiled for `device`; called with device arrays in HLO parameter
    order, returns its outputs in order."""

    def __init__(self, artifacts, spec, device):
        self.spec = spec
        with open(os.path.join(artifacts, spec["file"]), "rb") as f:
            hlo = f.read()
        started = time.perf_counter()
        self.stablehlo = without_copies(jax.extend.mlir.hlo_to_stablehlo(hlo))
        self.executable = device.client.compile_and_load(
            self.stablehlo, xla_client.DeviceList((device,)), xla_client.CompileOptions())
        self.compile_seconds = time.perf_counter() - started
        self._primitive = None

    def __call__(self, arguments):
        results = self.executable.execute_sharded(arguments)
        return [per_device[0] for per_device in results.disassemble_into_single_device_arrays()]

    def arguments(self, inputs, state):
        """Inputs by name, then the state slots, in HLO parameter order."""
        return [inputs[p["input"]] if "input" in p else state[p["state"]] for p in self.spec["params"]]

    def result(self, name):
        return next(i for i, o in enumerate(self.spec["outputs"]) if o.get("result") == name)

    def primitive(self):
        """The program as a JAX primitive, to call it inside jax.jit (a loop of steps): its
        lowering inlines the same StableHLO as a private function and calls it, as jax2tf's
        call_tf does with TF's HLO."""
        if self._primitive is None:
            primitive = jax.extend.core.Primitive(f"exported_{self.spec['kind']}_b{self.spec['batch']}")
            primitive.multiple_results = True
            avals = [jax.core.ShapedArray(o["shape"], np.dtype(o["dtype"])) for o in self.spec["outputs"]]
            primitive.def_abstract_eval(lambda *arguments: avals)

            def lowering(ctx, *arguments):
                module = mlir.ir.Module.parse(self.stablehlo)
                results = mlir.ir.SymbolTable(module.operation)["main"].type.results
                name = mlir.merge_mlir_modules(ctx.module_context.module, primitive.name, module,
                                               dst_symtab=ctx.module_context.symbol_table)
                return func_dialect.CallOp(results, mlir.ir.FlatSymbolRefAttr.get(name), list(arguments)).results

            mlir.register_lowering(primitive, lowering)
            self._primitive = primitive
        return self._primitive


class Layout:
    """One layout's programs and state, as the manifest describes them."""

    def __init__(self, artifacts, name, entry, device):
        self.name, self.entry, self.device = name, entry, device
        with np.load(os.path.join(artifacts, entry["state_file"])) as saved:
            self.initial = [saved[f"state_{slot}"] for slot in range(len(entry["state"]))]
        for slot, (spec, value) in enumerate(zip(entry["state"], self.initial)):
            if list(value.shape) != spec["shape"] or value.dtype.name != spec["dtype"]:
                raise ValueError(f"{entry['state_file']}: state_{slot} ({spec['name']}) is {value.dtype}"
                                 f"{list(value.shape)}, the manifest says {spec['dtype']}{spec['shape']}")
        self.artifacts, self._programs = artifacts, {}

    def program(self, kind, batch):
        if (kind, batch) not in self._programs:
            spec = next((p for p in self.entry["programs"] if (p["kind"], p["batch"]) == (kind, batch)), None)
            if spec is None:
                raise ValueError(f"{self.name}: no {kind} program at batch {batch} in the manifest")
            self._programs[kind, batch] = Program(self.artifacts, spec, self.device)
        return self._programs[kind, batch]

    def initial_state(self):
        return [jax.device_put(value, self.device) for value in self.initial]

    def metric_slots(self):
        return [slot for slot, spec in enumerate(self.entry["state"]) if spec["group"] == "metric"]


def train_step(program, state, images, labels):
    """One step: runs the program and writes the updated variables back into `state`; returns the
    outputs (loss and accuracy are fit's running means since the last metric reset)."""
    outputs = program(program.arguments({"images": images, "labels": labels}, state))
    for spec, value in zip(program.spec["outputs"], outputs):
        if "state" in spec:
            state[spec["state"]] = value
    return outputs


def _epoch_function(program, steps, batch, one_launch):
    """epoch(state, images, labels, order) -> (state, per-step losses, last accuracy): the
    batches are `order`'s first steps x batch faces. one_launch: the whole epoch is one jitted
    loop around the exported step (as Keras's steps_per_execution would); otherwise one launch of
    the exported executable per batch, as fit runs a jit_compile'd train step."""
    loss_at, accuracy_at = program.result("loss"), program.result("accuracy")
    updates = [(number, output["state"]) for number, output in enumerate(program.spec["outputs"]) if "state" in output]

    if one_launch:
        primitive = program.primitive()

        @functools.partial(jax.jit, donate_argnums=0)
        def epoch(state, images, labels, order):
            def step(state, index):
                outputs = primitive.bind(*program.arguments({"images": images[index], "labels": labels[index]}, state))
                state = list(state)
                for number, slot in updates:
                    state[slot] = outputs[number]
                return state, (outputs[loss_at], outputs[accuracy_at])

            state, (losses, accuracies) = jax.lax.scan(step, state, order[:steps * batch].reshape(steps, batch))
            return state, losses, accuracies[-1]

        return epoch

    @jax.jit
    def shuffled_batches(images, labels, order):  # one launch: the epoch's batches, on the device
        index = order[:steps * batch].reshape(steps, batch)
        xs, ys = images[index], labels[index]
        return tuple(xs[i] for i in range(steps)), tuple(ys[i] for i in range(steps))

    def epoch(state, images, labels, order):
        xs, ys = shuffled_batches(images, labels, order)
        losses = []
        for step in range(steps):
            outputs = train_step(program, state, xs[step], ys[step])
            losses.append(outputs[loss_at])
        return state, losses, outputs[accuracy_at]

    return epoch


def train(layout, batch, images, labels, epochs, seed, one_launch=False, log=print):
    """Epochs of training from the initial state; returns (state, per-epoch seconds, (loss,
    accuracy) per epoch, step-1 loss, compile seconds). The last partial batch of each epoch is
    dropped (another one each epoch: the faces are shuffled on the device)."""
    program = layout.program("train", batch)
    steps = len(images) // batch
    epoch_function = _epoch_function(program, steps, batch, one_launch)
    state, rng = layout.initial_state(), np.random.default_rng(seed)
    orders = [jax.device_put(rng.permutation(len(images)).astype(np.int32), layout.device) for _ in range(epochs)]
    compile_seconds = program.compile_seconds
    if one_launch:
        started = time.perf_counter()
        epoch_function = epoch_function.lower(state, images, labels, orders[0]).compile()
        compile_seconds = time.perf_counter() - started
    log(f"{layout.name}: train b{batch} {'epoch loop' if one_launch else 'step'} compiled in {compile_seconds:.1f} s")
    seconds, history, first_loss = [], [], None
    for epoch in range(epochs):
        started = time.perf_counter()
        for slot in layout.metric_slots():  # fit resets its metrics at every epoch's start (fresh
            state[slot] = jax.device_put(layout.initial[slot], layout.device)  # buffers: steps donate them)
        state, losses, accuracy = epoch_function(state, images, labels, orders[epoch])
        dispatched = time.perf_counter() - started  # launches are asynchronous: near the epoch's
        jax.block_until_ready(state)                 # time, the host's dispatch is the limit
        seconds.append(time.perf_counter() - started)
        first_loss = float(losses[0]) if first_loss is None else first_loss
        history.append((float(losses[-1]), float(accuracy)))
        log(f"  epoch {epoch + 1:3d}: {seconds[-1]:7.3f} s (host done dispatching at {dispatched:6.3f} s) "
            f"{steps * batch / seconds[-1]:10,.0f} images/s  loss {history[-1][0]:.4f}  accuracy {history[-1][1]:.4f}")
    return state, seconds, history, first_loss, compile_seconds


def inference(layout, batch, state, images, min_seconds, log=print):
    """(images/s, ms per batch, compile s) of back-to-back inference calls on one batch."""
    program = layout.program("infer", batch)
    batch_images = images[np.arange(batch) % len(images)]  # repeats faces if there are fewer
    arguments = program.arguments({"images": batch_images}, state)
    for _ in range(3):
        jax.block_until_ready(program(arguments))
    calls, started = 0, time.perf_counter()
    while True:
        for _ in range(10):
            outputs = program(arguments)
        calls += 10
        jax.block_until_ready(outputs)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            break
    return calls * batch / elapsed, 1e3 * elapsed / calls, program.compile_seconds


def _replay(layout, reference, images, labels):
    """`reference['steps']` train steps from the initial state; (losses, accuracies, state after
    step 1 as numpy, state after the last step)."""
    batch = reference["train_batch"]
    program = layout.program("train", batch)
    state, losses, accuracies = layout.initial_state(), [], []
    for step in range(reference["steps"]):
        outputs = train_step(program, state, images[step * batch:(step + 1) * batch],
                             labels[step * batch:(step + 1) * batch])
        losses.append(float(outputs[program.result("loss")]))
        accuracies.append(float(outputs[program.result("accuracy")]))
        if step == 0:
            after_step_1 = [np.asarray(value) for value in state]  # copies: the next step donates them
    return losses, accuracies, after_step_1, state


def _load_reference(layout, reference):
    with np.load(os.path.join(layout.artifacts, reference["file"])) as saved:
        expected = {key: saved[key] for key in saved.files}
    images, labels = synthetic_faces(reference["faces"], reference["seed"])
    return expected, jax.device_put(images, layout.device), jax.device_put(labels, layout.device)


def _state_differences(layout, state, expected, prefix=""):
    """{variable name: ||ours - TF|| / ||TF||} (integers: max|ours - TF|)."""
    differences = {}
    for slot, spec in enumerate(layout.entry["state"]):
        ours = np.asarray(state[slot]).astype(np.float64)
        theirs = expected[f"{prefix}state_{slot}"].astype(np.float64)
        if spec["dtype"].startswith("int"):
            differences[spec["name"]] = float(np.abs(ours - theirs).max()) if ours.size else 0.0
        else:
            differences[spec["name"]] = float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))
    return differences


def _gradient_free(layout, expected):
    """Names of the weights whose gradient TF found to be ~0 but not 0 in step 1 (such as a bias
    followed by batch norm), with their Adam slots: Adam turns rounding noise there into full
    lr-sized steps of either sign, so they cannot be compared. (Adam's m after step 1 is 0.1 x
    the gradient.)"""
    norms = {}
    for slot, spec in enumerate(layout.entry["state"]):
        if "/m/" in spec["name"]:
            norms[spec["name"].split("/m/", 1)[1]] = float(np.linalg.norm(expected[f"step1_state_{slot}"]))
    largest = max(norms.values(), default=0.0)
    free = {weight for weight, norm in norms.items() if 0 < norm < 1e-4 * largest}  # exactly 0 compares fine
    return {spec["name"] for spec in layout.entry["state"]
            if any(spec["name"].endswith(f"/{w}") and ("/m/" in spec["name"] or "/v/" in spec["name"]
                                                      or spec["name"] == f"model/{w}") for w in free)}


def _check(name, value, limit, log):
    log(f"    {'ok' if value <= limit else 'MISMATCH'}: {name} {value:.1e} (limit {limit:.0e})")
    return value <= limit


def _worst(differences, names):
    name = max(names, key=differences.get)
    return differences[name], name, statistics.median(differences[n] for n in names)


def verify(layout, log=print):
    """Replay what TF computed with the same tf.functions on the same faces (export_xla.py); returns
    whether every difference is within the limits below, set from what the CPU gives (another
    device's arithmetic, e.g. TF32 or cuDNN's float16 kernels, can exceed them).

    - Benchmark programs: inference with TF's initial weights and with TF's weights after its
      train steps must give TF's probabilities (float16 logits: 2e-3); the train program's step
      counters must match exactly. Its losses cannot match: Dropout's mask comes from XLA's `rng`
      op, whose stream each XLA build derives in its own way.
    - Twins, Dropout's mask drawn from a Generator state variable so that both sides draw the
      same masks: "float32" must match TF in step 1's loss (1e-6) and in every variable after
      step 1 (norm-relative 1e-2; the worst seen here, 5e-3, is a gradient summed with heavy
      cancellation; the median is ~1e-6): the graph arrives intact, state mapping included.
      "mixed" is the benchmark's train program otherwise: step 1's loss within 2e-4, counters and
      loss scale exact; its variables differ by float16 rounding (printed only: at batch 64 the
      gradients differed by ~10% norm-relative, TF's and jaxlib's each as far from the same
      program run in float32). Later steps' losses: within 2e-3; later states are printed only,
      as Adam's first, sign-like steps and the sampler's floor() amplify rounding differences.
    """
    ok = True
    reference = layout.entry["reference"]
    expected, images, labels = _load_reference(layout, reference)
    infer_batch, state_count = reference["infer_batch"], len(layout.entry["state"])
    log(f"{layout.name}: verify against TF: {reference['steps']} train steps at batch {reference['train_batch']}, "
        f"inference at batch {infer_batch}")
    infer = layout.program("infer", infer_batch)
    tf_trained = [jax.device_put(expected[f"state_{slot}"], layout.device) for slot in range(state_count)]
    for label, state, key in (("initial weights", layout.initial_state(), "initial_probabilities"),
                              ("TF's weights after its steps", tf_trained, "probabilities")):
        ours = np.asarray(infer(infer.arguments({"images": images[:infer_batch]}, state))[0])
        same = float((ours.argmax(1) == expected[key].argmax(1)).mean())
        log(f"  benchmark inference, {label}: same predicted class for {100 * same:.2f}% of {infer_batch}")
        ok &= _check("max|p - p_TF|", float(np.abs(ours - expected[key]).max()), 2e-3, log)
    losses, _, _, state = _replay(layout, reference, images, labels)
    log("  benchmark train program: loss " + ", ".join(
        f"{a:.4f} (TF {b:.4f})" for a, b in zip(losses, expected["losses"])) + ": dropout masks differ by construction")
    differences = _state_differences(layout, state, expected)
    ok &= _check("step counters, max|diff|", max(differences[s["name"]] for s in layout.entry["state"]
                                                  if s["dtype"].startswith("int")), 0, log)

    for name, step1_loss_limit, step1_state_limit in (("float32", 1e-6, 1e-2), ("mixed", 2e-4, None)):
        twin = Layout(layout.artifacts, f"{layout.name} {name} twin", layout.entry["verify"][name], layout.device)
        reference = twin.entry["reference"]
        expected, images, labels = _load_reference(twin, reference)
        losses, accuracies, after_step_1, state = _replay(twin, reference, images, labels)
        log(f"  {name} twin train program" + ("" if name != "mixed" else
            f" (HLO opcode counts that differ from the benchmark's: {twin.entry['opcodes_differing_from_benchmark']})"))
        relative = [abs(a - b) / abs(b) for a, b in zip(losses, expected["losses"])]
        for step, (loss, accuracy) in enumerate(zip(losses, accuracies)):
            log(f"    step {step + 1}: loss {loss:.6f} vs TF {expected['losses'][step]:.6f} "
                f"(rel diff {relative[step]:.1e}), accuracy {accuracy:.4f} vs {expected['accuracies'][step]:.4f}")
        ok &= _check("step 1 loss, relative difference", relative[0], step1_loss_limit, log)
        ok &= _check("later steps' loss, max relative difference", max(relative[1:], default=0.0), 2e-3, log)
        specs = twin.entry["state"]
        integers = [s["name"] for s in specs if s["dtype"].startswith("int")]
        exact = integers + [s["name"] for s in specs if "loss_scale" in s["name"] and s["name"] not in integers]
        final = _state_differences(twin, state, expected)
        ok &= _check(f"{', '.join(n.rsplit('/', 1)[-1] for n in exact)} after {reference['steps']} steps: max|diff|",
                     max(final[n] for n in exact), 0, log)
        step1 = _state_differences(twin, after_step_1, expected, prefix="step1_")
        free = _gradient_free(twin, expected)
        compared = [s["name"] for s in specs if s["name"] not in integers and s["name"] not in free
                    and s["group"] != "metric"]
        worst, worst_name, median = _worst(step1, compared)
        summary = (f"{len(compared)} weights and Adam slots after step 1, ||ours - TF|| / ||TF||: median {median:.1e}, "
                   f"worst {worst:.1e} ({worst_name})")
        if step1_state_limit is None:
            log(f"    {summary}")
        else:
            ok &= _check(summary + ";", worst, step1_state_limit, log)
        if free:
            log(f"    left out, gradient ~0 (not 0) in TF's step 1: {sorted(free)}")
        worst, worst_name, median = _worst(final, compared)
        log(f"    the same after step {reference['steps']}: median {median:.1e}, worst {worst:.1e} ({worst_name})")
    log(f"  {layout.name}: {'all checks within the limits' if ok else 'SOME CHECKS OUTSIDE THE LIMITS'}")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", default=".gpu", help="export_xla.py's --out folder")
    parser.add_argument("--layouts", nargs="+", help="default: every layout in the manifest")
    parser.add_argument("--faces", type=int, default=FER2013_TRAIN_SIZE, help="synthetic training faces")
    parser.add_argument("--epochs", type=int, default=10, help="the first is the warm-up")
    parser.add_argument("--train-batches", nargs="+", type=int, help="default: every exported train batch")
    parser.add_argument("--infer-batches", nargs="+", type=int, help="default: every exported infer batch")
    parser.add_argument("--loops", nargs="+", choices=tuple(LOOPS), default=list(LOOPS),
                        help="train with a launch per step (as fit with jit_compile), with the epoch in one launch "
                             "(no host dispatch in the figure), or both")
    parser.add_argument("--infer-seconds", type=float, default=5.0, help="timed inference per batch size")
    parser.add_argument("--mode", choices=("benchmark", "verify", "both"), default="benchmark",
                        help="verify: replay TF's recorded references (export_xla.py --reference-steps)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with open(os.path.join(args.artifacts, MANIFEST)) as f:
        manifest = json.load(f)
    device = jax.devices()[0]
    log = print
    log(f"device: {device.platform} {device.device_kind} ({device}); jax {jax.__version__}; "
        f"HLO from TF {manifest['tensorflow']} (tf_keras {manifest['tf_keras']}), mixed precision")

    layouts = [Layout(args.artifacts, name, manifest["layouts"][name], device)
               for name in args.layouts or manifest["layouts"]]
    if args.mode != "verify":
        benchmark(layouts, args, device, log)
    if args.mode != "benchmark":
        for layout in layouts:
            if "verify" not in layout.entry:
                log(f"{layout.name}: no TF reference exported (export_xla.py --reference-steps)")
                continue
            try:
                if not verify(layout, log):
                    FAILURES.append(f"{layout.name}: verification outside its limits (see the lines above)")
            except Exception as error:  # keep going: one device run has to bring back what it can
                _failed(f"{layout.name}: verification", error, log)
    if FAILURES:
        sys.exit(f"{len(FAILURES)} measurement(s) or check(s) failed:\n  " + "\n  ".join(FAILURES))


LOOPS = {"step": "a launch per step", "epoch": "the epoch in one launch"}


def _training_figures(layout, batch, faces, labels, args, one_launch, log):
    """(summary line, final state or None). If the benchmark's train program fails, times the
    mixed twin instead (it differs only in where Dropout's mask comes from: a Generator)."""
    steps, how = args.faces // batch, LOOPS["epoch" if one_launch else "step"]
    log(f"{layout.name}: {args.epochs} epochs of {steps} steps at batch {batch}, {how} "
        f"({args.faces - steps * batch} of {args.faces:,} faces left out each epoch)")
    trained, state = layout, None
    try:
        state, seconds, history, first_loss, compile_s = train(
            layout, batch, faces, labels, args.epochs, args.seed, one_launch, log)
    except Exception as error:  # keep going: one device run has to bring back what it can
        _failed(f"{layout.name}: train b{batch} ({how})", error, log)
        twin = layout.entry.get("verify", {}).get("mixed")
        if not twin or batch not in [p["batch"] for p in twin["programs"]]:
            return f"{layout.name}: train b{batch} ({how}): FAILED {type(error).__name__}", None
        trained = Layout(layout.artifacts, f"{layout.name} (mixed twin: Generator dropout)", twin, layout.device)
        try:
            _, seconds, history, first_loss, compile_s = train(
                trained, batch, faces, labels, args.epochs, args.seed, one_launch, log)
        except Exception as error:
            _failed(f"{trained.name}: train b{batch} ({how})", error, log)
            return f"{trained.name}: train b{batch} ({how}): FAILED {type(error).__name__}", None
    epoch_s = statistics.median(seconds[1:] or seconds)
    which = (f"median of epochs 2-{len(seconds)}; epoch 1 took {seconds[0]:.2f} s"
             if len(seconds) > 1 else "one epoch, first execution included")
    return (f"{trained.name}: train b{batch} ({how}): {steps * batch / epoch_s:,.0f} images/s, "
            f"{1e3 * epoch_s / steps:.2f} ms/step ({which}), compile {compile_s:.1f} s; loss step 1 "
            f"{first_loss:.4f}, epoch 1 {history[0][0]:.4f} -> epoch {len(history)} {history[-1][0]:.4f} "
            f"(accuracy {history[0][1]:.3f} -> {history[-1][1]:.3f})"), state


def benchmark(layouts, args, device, log=print):
    """Train and inference figures for every layout and exported batch size, then a summary."""
    started = time.perf_counter()
    faces, labels = synthetic_faces(args.faces, args.seed)
    log(f"{args.faces:,} synthetic faces rendered in {time.perf_counter() - started:.1f} s")
    faces, labels = jax.device_put(faces, device), jax.device_put(labels, device)
    summary = []
    for layout in layouts:
        exported = lambda kind: [p["batch"] for p in layout.entry["programs"] if p["kind"] == kind]  # noqa: E731
        state = None
        for batch in args.train_batches or exported("train"):
            if args.faces < batch:
                summary.append(f"{layout.name}: train b{batch}: skipped, {args.faces:,} faces make no batch")
                log(summary[-1])
                continue
            for loop in args.loops:
                line, trained_state = _training_figures(layout, batch, faces, labels, args, loop == "epoch", log)
                summary.append(line)
                log(line)
                state = trained_state or state
        state = state or layout.initial_state()
        for batch in args.infer_batches or exported("infer"):
            try:
                rate, ms, compile_s = inference(layout, batch, state, faces, args.infer_seconds)
                summary.append(f"{layout.name}: infer b{batch}: {rate:,.0f} images/s, {ms:.3f} ms/batch "
                               f"(back-to-back launches), compile {compile_s:.1f} s")
                log(summary[-1])
            except Exception as error:
                summary.append(_failed(f"{layout.name}: infer b{batch}", error, log))
    log(f"\nsummary ({device.device_kind}, {args.faces:,} faces, {args.epochs} epochs):\n  " + "\n  ".join(summary))
    log("reproduce: python3 -m bench.gpu.run_xla " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
