"""The one exception type for problems the user can fix.

The CLI turns a `UserError` into a single line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a message that names the file or option, the problem and the fix.

    >>> str(UserError("data.csv: no column 'label'; pass --columns label=NAME"))
    "data.csv: no column 'label'; pass --columns label=NAME"
    """
