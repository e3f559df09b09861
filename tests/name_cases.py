"""Names the API server refuses and takes, shared by tests/unit/test_names.py and the e2e
check that the real API server agrees with ``kascade validate`` (test_names_agree.py)."""

BAD_OBJECT_NAMES = [
    "",
    "Upper",
    "hello_world",
    "hello world",
    "-leading",
    "trailing-",
    "trailing.",
    ".leading",
    "a..b",
    "..",
    ".",
    "../../escape",
    "/tmp/x",
    "a/b",
    "a\\b",
    "line\nbreak",
    "tab\there",
    "ünïcode",
    "naïve-name",
    "x" * 254,
    "a." + "b" * 252,
    "emoji-🙂",
    "null\0byte",
    "percent%20",
    "UPPER-CASE",
]
GOOD_OBJECT_NAMES = ["a", "hello-world", "0", "my.pipeline", "a-b.c-d", "x" * 253, "9lives"]
