"""The lab's scenario finder: lists the mite scenarios in one folder.

Run by the lab with the pinned mite's Python, the folder as working
directory and first on sys.path. Writes one JSON document on stdout:
{"scenarios": [...], "skipped": [...]}. Each scenario: module, function,
doc (the module's docstring), function_doc, and either shapes (the required
journeys per second of its volume models, summed, for each concurrency the
lab asks about) or a problem saying why they could not be computed.

A scenario is a top-level function whose name has "scenario" in it, not
starting with "_", taking nothing or only mite's `config` and `sender`.
Modules are read with `ast` first; only those holding one are imported.
"""
import ast
import json
import os
import sys
import traceback

MOST_MODULES = 200
MOST_DEPTH = 3
MOST_SECONDS = 600
SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}


def module_names(root):
    """(dotted name, path) of every .py module under root, shallow first."""
    found = []
    skipped = []

    def walk(folder, prefix, depth):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            skipped.append(f"{folder}: {e.strerror}")
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_file() and name.endswith(".py"):
                stem = name[:-3]
                if stem == "__init__":
                    continue
                if not stem.isidentifier():
                    skipped.append(f"{prefix}{name}: not an importable module name")
                    continue
                found.append((prefix + stem, entry.path))
            elif entry.is_dir(follow_symlinks=False) and depth < MOST_DEPTH:
                if name in SKIP_DIRS or not name.isidentifier():
                    continue
                if os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
                    continue
                if os.path.isfile(os.path.join(entry.path, "__init__.py")):
                    walk(entry.path, prefix + name + ".", depth + 1)

    walk(root, "", 0)
    return found[:MOST_MODULES], skipped


def candidates(path):
    """(module docstring, [(function, docstring)]) read without importing."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    functions = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if node.name.startswith("_") or "scenario" not in node.name.lower():
            continue
        args = node.args
        names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        if args.vararg or args.kwarg or any(n not in ("config", "sender") for n in names):
            continue
        functions.append((node.name, ast.get_docstring(node) or ""))
    return ast.get_docstring(tree) or "", functions


def call_scenario(function, concurrency, duration, target_url):
    os.environ["MITE_CONF_mite_perf_concurrency"] = str(concurrency)
    os.environ["MITE_CONF_mite_perf_duration"] = str(duration)
    os.environ["MITE_CONF_mite_perf_target_url"] = target_url
    import inspect

    kwargs = {}
    params = inspect.signature(function).parameters
    if "config" in params:
        from mite.config import ConfigManager

        config = ConfigManager()
        for name, value in os.environ.items():
            if name.startswith("MITE_CONF_"):
                config.set(name[len("MITE_CONF_"):], value)
        kwargs["config"] = config
    if "sender" in params:
        kwargs["sender"] = lambda *a, **k: None
    return function(**kwargs)


def shape(scenarios):
    """Required journeys for each second, summed over the volume models,
    until every one stops (or MOST_SECONDS)."""
    from mite.scenario import StopVolumeModel

    models = []
    for item in scenarios:
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise ValueError(f"an entry is not (journey, datapool, volume model): {item!r:.80}")
        journey, _, model = item
        if not isinstance(journey, str) or ":" not in journey:
            raise ValueError(f"the journey {journey!r:.80} is not module:function")
        if not callable(model):
            raise ValueError(f"the volume model of {journey} cannot be called")
        models.append(model)
    if not models:
        raise ValueError("it returned no scenario")
    required = []
    live = list(models)
    for second in range(MOST_SECONDS):
        total = 0
        still = []
        for model in live:
            try:
                total += max(0, int(model(second, second + 1)))
                still.append(model)
            except StopVolumeModel:
                pass
        live = still
        if not live:
            return {"required": required, "stops": True}
        required.append(total)
    return {"required": required, "stops": False}


def main():
    request = json.loads(sys.argv[1])
    root = os.getcwd()
    sys.path.insert(0, root)
    out = os.fdopen(os.dup(1), "w")
    # What the scenarios print goes to stderr, never into the answer.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    names, skipped = module_names(root)
    found = []
    for module, path in names:
        try:
            doc, functions = candidates(path)
        except (SyntaxError, ValueError, OSError) as e:
            skipped.append(f"{module}: cannot be read ({e.__class__.__name__}: {e})")
            continue
        if not functions:
            continue
        try:
            import importlib

            loaded = importlib.import_module(module)
            problem = None
        except BaseException as e:  # noqa: B036 - a module may sys.exit
            loaded = None
            problem = f"cannot be imported: {e.__class__.__name__}: {e}"
        for name, function_doc in functions:
            entry = {
                "module": module,
                "function": name,
                "doc": doc,
                "function_doc": function_doc,
                "shapes": [],
                "problem": problem,
            }
            if loaded is not None:
                try:
                    function = getattr(loaded, name)
                    for concurrency in request["concurrencies"]:
                        result = call_scenario(
                            function, concurrency, request["duration"], request["target_url"]
                        )
                        entry["shapes"].append(
                            dict(concurrency=concurrency, **shape(list(result)))
                        )
                except BaseException as e:  # noqa: B036
                    entry["shapes"] = []
                    last = traceback.extract_tb(e.__traceback__)[-1:]
                    where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
                    entry["problem"] = f"its volume model cannot be computed: {e.__class__.__name__}: {e}{where}"
            found.append(entry)
    json.dump({"scenarios": found, "skipped": skipped}, out)
    out.flush()


if __name__ == "__main__":
    main()
