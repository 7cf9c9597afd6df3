"""Python values written as Spark SQL literals: the one place the transforms splice a value into SQL."""


def sql_literal(value: object) -> str:
    """An integer as itself, anything else as a string literal (quotes and backslashes escaped,
    characters that do not print written as unicode escapes)."""
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return "'" + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + "'"
