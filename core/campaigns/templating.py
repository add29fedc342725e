"""Message personalisation in Liquid, in a sandbox.

Templates see only the variables we hand them: they cannot read files (the `include` and
`render` tags are removed and the loader holds nothing), run code (Liquid has no way to)
or reach the network. Loops, output size and nesting are bounded so a template cannot
stall a send. Every problem becomes a `TemplateError` carrying the line and a plain message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from liquid import DictLoader, Environment
from liquid.exceptions import LiquidError

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


class _SandboxedEnvironment(Environment):
    loop_iteration_limit = 1_000
    output_stream_limit = 20_000  # characters; far beyond any push or email subject
    local_namespace_limit = 20_000
    context_depth_limit = 10
    block_nesting_limit = 10

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=extra)
        for tag in ("include", "render"):
            self.tags.pop(tag, None)


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
        return _ENV.from_string(source)
    except LiquidError as error:
        raise TemplateError(field, _problem(error, source)) from None


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


def check(source: str, field: str = "message") -> TemplateProblem | None:
    """The first problem in `source` (parsing, then a render with sample values), or None."""
    try:
        render(source, VARIABLES, field)
    except TemplateError as error:
        return error.problem
    return None
