"""Hostile text as data: what a local user can write to the journal (or a model can answer), and how an operator
must see it. Each entry: name -> (raw text, how printable() shows it)."""

from __future__ import annotations

HOSTILE = {
    # Terminal control: erase the screen, set the window title, a hyperlink whose text hides its target, a
    # clipboard write (OSC 52), the same CSI through its 8-bit C1 form, carriage return overwriting the line.
    "erase": ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
    "title": ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    "osc8": ("\x1b]8;;http://evil.example/\x1b\\click here\x1b]8;;\x1b\\",
             "\\x1b]8;;http://evil.example/\\x1b\\click here\\x1b]8;;\\x1b\\"),
    "osc52": ("\x1b]52;c;cm0gLXJmIC8=\x07", "\\x1b]52;c;cm0gLXJmIC8=\\x07"),
    "dcs": ("\x1bP+q544e\x1b\\", "\\x1bP+q544e\\x1b\\"),
    "c1": ("\x9b2J\x9d0;c1 title\x9c", "\\x9b2J\\x9d0;c1 title\\x9c"),
    "cr": ("all good\rFAKE", "all good\\rFAKE"),
    "bell": ("ding\x07\x08\x7f", "ding\\x07\\x08\\x7f"),
    # Reordering what a reader sees (Trojan Source): shown as escapes.
    "bidi": ("unit \u202eecivres.xnign\u202c ok \u2066x\u2069", "unit \\u202eecivres.xnign\\u202c ok \\u2066x\\u2069"),
    "zero width": ("ss\u200bhd", "ss\\u200bhd"),
    # Rich markup and emoji codes: shown as written, never read.
    "close tag": ("[/]", "[/]"),
    "escaped close": ("\\[/x]", "\\[/x]"),
    "link markup": ("\\[link=http://x]click\\[/link]", "\\[link=http://x]click\\[/link]"),
    "style markup": ("[bold red]FAKE ALERT[/bold red]", "[bold red]FAKE ALERT[/bold red]"),
    "emoji code": (":warning: :skull:", ":warning: :skull:"),
}

#: Nothing from the text above may reach the terminal raw.
FORBIDDEN = ("\x1b", "\x9b", "\x9c", "\x9d", "\x07", "\r", "\u202e", "\u2066", "\u200b")
