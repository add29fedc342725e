"""Message personalisation in Liquid, in a sandbox.

Templates see only the variables we hand them: they cannot read files (the `include` and
`render` tags are removed and the loader holds nothing), run code (Liquid has no way to)
or reach the network. Loops, output size and nesting are bounded so a template cannot
stall a send. Every problem becomes a `TemplateError` carrying the line and a plain message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from liquid import DictLoader, Environment
from liquid.builtin.expressions.primitive import RangeLiteral
from liquid.context import RenderContext
from liquid.exceptions import FilterArgumentError, LiquidError

from core.errors import UserError

MAX_TEMPLATE_CHARS = 10_000

# The variables a message can use, with an example value: the composer's help and the
# sample render that checks a template before any real user is at hand.
VARIABLES: dict[str, object] = {
    "first_name": "Emma",
    "email": "emma@example.com",
    "country": "GB",
    "language": "en",
    "platform": "iOS",
    "timezone": "Europe/London",
    "external_id": "u-000042",
    "user_id": 42,
    "session_count": 12,
    "purchase_count": 2,
    "total_spent": 76.5,
    "likelihood_score": 81,
    "likelihood_tier": "High",
    "offer": "5% off",
}


# Bounds on what a filter may take or make. A message is short: no list needs more items than a
# loop may run, no text more characters than a message may hold, no number more than 64 bits.
MAX_ITEMS = 1_000
MAX_TEXT_CHARS = 20_000
MAX_NUMBER = 2**63


class _TooBig(FilterArgumentError):
    """A value past the bounds above; Liquid attaches the filter's line."""


class _GuardedFilter:
    """A filter that fails as a template error, never as a raw Python exception or an exhausted machine.

    Liquid turns TypeError and its own argument errors into template errors with a line, but
    lets the rest escape (base64_decode of bytes that are not UTF-8, the date of a year past
    9999, floor of NaN). Inputs and results are bounded so no chain of filters can build a
    gigabyte string or a number with millions of digits.
    """

    def __init__(self, name: str, func):
        self.name = name
        self.func = func
        for attribute in ("with_context", "with_environment", "validate"):
            if hasattr(func, attribute):
                setattr(self, attribute, getattr(func, attribute))

    def __call__(self, left, *args, **kwargs):
        _check_value(self.name, left)
        for value in (*args, *kwargs.values()):
            _check_value(self.name, value)
        if self.name == "replace" and len(args) >= 2:
            text, old, new = str(left), str(args[0]), str(args[1])
            grown = len(text) + (text.count(old) if old else len(text) + 1) * len(new)
            if grown > MAX_TEXT_CHARS:
                raise _TooBig(f"{self.name}: the result would be longer than {MAX_TEXT_CHARS:,} characters", token=None)
        try:
            result = self.func(left, *args, **kwargs)
        except (LiquidError, TypeError):
            raise
        except (ValueError, ArithmeticError, LookupError, UnicodeError) as error:
            raise FilterArgumentError(f"{self.name}: {_reason(error)}", token=None) from None
        _check_value(self.name, result)
        return result


def _reason(error: Exception) -> str:
    if isinstance(error, UnicodeError):
        return "the decoded value is not text"
    if isinstance(error, OverflowError) or "out of range" in str(error):
        return "a number is out of range"
    return str(error).split("\n")[0][:200] or type(error).__name__


def _check_value(name: str, value) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        raise _TooBig(f"{name}: a number is not finite", token=None)
    if isinstance(value, int | float | Decimal) and abs(value) >= MAX_NUMBER:
        raise _TooBig(f"{name}: a number is too large (the limit is 2^63)", token=None)
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise _TooBig(f"{name}: a text is longer than {MAX_TEXT_CHARS:,} characters", token=None)
    if isinstance(value, range | list | tuple | dict) and len(value) > MAX_ITEMS:
        raise _TooBig(f"{name}: a list has more than {MAX_ITEMS:,} items", token=None)


class _BoundedRange(RangeLiteral):
    """`(a..b)` of at most MAX_ITEMS numbers: Liquid would otherwise build ranges of any size."""

    __slots__ = ()

    def _make_range(self, start, stop) -> range:
        made = super()._make_range(start, stop)
        if len(made) > MAX_ITEMS:
            raise FilterArgumentError(
                f"a range has {len(made):,} numbers; the limit is {MAX_ITEMS:,}", token=self.token
            )
        return made


def _bound_ranges(template) -> None:
    """Swap every range literal in a parsed template for a bounded one (same slots, so in place)."""
    static = RenderContext(template)
    expressions: list = []
    nodes = list(template.nodes)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children(static, include_partials=False))
        expressions.extend(node.expressions())
    while expressions:
        expression = expressions.pop()
        if type(expression) is RangeLiteral:
            expression.__class__ = _BoundedRange
        expressions.extend(expression.children())


class _SandboxedEnvironment(Environment):
    loop_iteration_limit = MAX_ITEMS
    output_stream_limit = MAX_TEXT_CHARS  # characters; far beyond any push or email subject
    local_namespace_limit = MAX_TEXT_CHARS
    context_depth_limit = 10
    block_nesting_limit = 10

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in ("include", "render"):
            self.tags.pop(tag, None)
        self.filters = {name: _GuardedFilter(name, func) for name, func in self.filters.items()}


_ENV = _SandboxedEnvironment(loader=DictLoader({}))


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class TemplateError(UserError):
    """A template the marketer must fix; `problem` says the line and what is wrong."""

    def __init__(self, field: str, problem: TemplateProblem):
        super().__init__(f"{field}, {problem}")
        self.field = field
        self.problem = problem


def _problem(error: LiquidError, source: str) -> TemplateProblem:
    context = error.context()
    line = context[0] if context else max(1, source.count("\n") + 1)
    message = str(error.message or type(error).__name__)
    if message.startswith("unexpected tag 'include'") or message.startswith("unexpected tag 'render'"):
        message = "messages cannot include other templates"
    if "loop iteration limit" in message.lower():
        message = "a loop runs too many times (at most 1,000 iterations)"
    if "output stream limit" in message.lower():
        message = "the message grows too long (at most 20,000 characters)"
    return TemplateProblem(line=line, message=message)


def _parse(source: str, field: str):
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(field, TemplateProblem(1, f"the template is longer than {MAX_TEMPLATE_CHARS:,} characters"))
    try:
        template = _ENV.from_string(source)
    except LiquidError as error:
        raise TemplateError(field, _problem(error, source)) from None
    _bound_ranges(template)
    return template


def compile_template(source: str, field: str = "message"):
    """A parsed template, or a TemplateError naming the line that is wrong."""
    return _parse(source or "", field)


def render_compiled(template, variables: Mapping[str, object], field: str = "message") -> str:
    try:
        return template.render(**variables)
    except LiquidError as error:
        raise TemplateError(field, _problem(error, template.source if hasattr(template, "source") else "")) from None
    except RecursionError:
        raise TemplateError(field, TemplateProblem(1, "the template nests too deeply")) from None


def render(source: str, variables: Mapping[str, object], field: str = "message") -> str:
    """Render `source` with `variables`; errors come back as TemplateError (line and message)."""
    template = _parse(source or "", field)
    try:
        return template.render(**variables)
    except LiquidError as error:
        raise TemplateError(field, _problem(error, source)) from None
    except RecursionError:
        raise TemplateError(field, TemplateProblem(1, "the template nests too deeply")) from None


# Users a template must survive before launch, beyond the friendly sample: what real audiences
# hold at the edges (a user with nothing known, a long name in any script, very large figures).
EDGE_CASE_USERS: tuple[tuple[str, dict[str, object]], ...] = (
    ("", VARIABLES),  # the friendly sample: its problems need no "for whom"
    ("a user with every field empty", {**dict.fromkeys(VARIABLES), "user_id": 1, "external_id": "u1", "offer": ""}),
    (
        "a user with a long non-Latin name",
        {
            **VARIABLES,
            "first_name": ("Zoë-Ngọc 李小龍 محمد 🎉" * 6)[:100],
            "email": "ünïcödé." + "x" * 230 + "@example.com",
            "timezone": "America/Argentina/ComodRivadavia",
        },
    ),
    (
        "a user with extreme figures",
        {
            **VARIABLES,
            "user_id": 2**62,
            "session_count": 0,
            "purchase_count": 0,
            "total_spent": 1e15,
            "likelihood_score": 0,
            "likelihood_tier": "Low",
        },
    ),
    (
        "a user with no score and huge counts",
        {
            **VARIABLES,
            "session_count": 2**31,
            "purchase_count": 2**31,
            "likelihood_score": None,
            "likelihood_tier": None,
        },
    ),
)


def check(source: str, field: str = "message") -> TemplateProblem | None:
    """The first problem in `source`: parsing, then a render for each edge-case user; None when all pass."""
    try:
        template = _parse(source or "", field)
    except TemplateError as error:
        return error.problem
    for who, variables in EDGE_CASE_USERS:
        try:
            render_compiled(template, variables, field)
        except TemplateError as error:
            problem = error.problem
            return TemplateProblem(problem.line, f"{problem.message} (for {who})") if who else problem
    return None
