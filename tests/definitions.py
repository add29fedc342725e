"""Segment definitions the tests share."""

# The tutorial's segment: last used the app more than 2 weeks ago AND less than 3 weeks ago.
LAPSED_2_WEEKS = {
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

# Every iOS user.
IOS_ONLY = {
    "version": 1,
    "match": "all",
    "groups": [{"match": "all", "filters": [{"type": "platform", "values": ["iOS"]}]}],
    "exclude": [],
}
