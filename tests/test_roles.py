def _acting_functions() -> set[str]:
    """Every core function that takes an `actor` (so checks permissions and writes the audit log)."""
    import importlib
    import inspect
    import pkgutil

    import core

    names = set()
    for info in pkgutil.walk_packages(core.__path__, "core."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if "actor" in inspect.signature(function).parameters and name not in {"require", "can", "allowed"}:
                names.add(name)
    return names


def test_pages_always_pass_the_signed_in_actor():
    """Core defaults `actor` to the local admin for the CLI; a page that forgot it would act as admin."""
    import ast
    from pathlib import Path

    acting = _acting_functions()
    assert {"export_csv_bytes", "launch", "transition", "import_users", "set_delivery_rules"} <= acting
    missing = []
    for path in sorted((Path(__file__).resolve().parent.parent / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            target = node.args[0] if getattr(node.func, "id", None) == "partial" and node.args else node.func
            name = getattr(target, "attr", None) or getattr(target, "id", None)
            if name in acting and not any(keyword.arg == "actor" for keyword in node.keywords):
                missing.append(f"{path.name}:{node.lineno} {name}")
    assert missing == []
