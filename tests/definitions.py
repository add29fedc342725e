"""Segment definitions the tests share (parsed, as core takes them)."""

from core.segments import parse_definition

# The tutorial's segment: last used the app more than 2 weeks ago AND less than 3 weeks ago.
LAPSED_2_WEEKS = parse_definition(
    {
        "version": 1,
        "match": "all",
        "groups": [
            {
                "match": "all",
                "filters": [
                    {"type": "last_used", "op": "more_than", "value": 2, "unit": "weeks"},
                    {"type": "last_used", "op": "less_than", "value": 3, "unit": "weeks"},
                ],
            }
        ],
        "exclude": [],
    }
)

# Every iOS user.
IOS_ONLY = parse_definition(
    {
        "version": 1,
        "match": "all",
        "groups": [{"match": "all", "filters": [{"type": "platform", "values": ["iOS"]}]}],
        "exclude": [],
    }
)
