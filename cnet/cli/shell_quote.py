"""shlex.join for `cnet ps`'s table, without shlex: shlex imports `re`, which with what re loads
(enum, functools) is a large share of `ps`'s start-up (scripts/bench). The same text as
shlex.join for every word (tests/unit/test_shell_quote.py compares the two)."""

# shlex's safe characters: re's \w in ASCII mode, and @%+=:,./-
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def quote(word: str) -> str:
    if not word:
        return "''"
    if SAFE.issuperset(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def join(words: list[str]) -> str:
    return " ".join(quote(w) for w in words)
