"""The one exception type for user mistakes, and the one warning type for what the user should know.

Everything a user can get wrong (a missing file, an empty column, a bad ``n``) raises
:class:`TabgenError` with a message that names the culprit and says what to do. The CLI turns it
into exit code 2 without a traceback; anything else escaping is a bug in tabgen.
"""


class TabgenError(ValueError):
    """A problem with the user's input, reported as a clear message."""


class TabgenWarning(UserWarning):
    """Something tabgen can work with but that the user should know: an identifier column it will not
    model, or a table too small to learn well from."""
