"""An HTML page as a reader sees it, for tests of the report pages (stdlib parser: no extra dependency)."""
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """The visible text, ``flow`` (the text with ``[image]`` where a picture is, in page order), every element's
    classes with its ancestors' classes (to find code inside code cells), and every attribute value except inline
    images (where paths could hide)."""

    def __init__(self, text):
        super().__init__()
        self.text, self.flow, self.elements, self.attrs, self._stack = [], [], [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        classes = set(next((v or "" for k, v in attrs if k == "class"), "").split())
        self.attrs += [v or "" for _, v in attrs if not (v or "").startswith("data:")]  # not inline images
        if tag == "img":
            self.flow.append("[image]")
        above = set().union(*(c for _, c in self._stack)) if self._stack else set()
        self.elements.append((tag, classes, above))
        if tag not in VOID:
            self._stack.append((tag, classes))

    def handle_endtag(self, tag):
        for i in range(len(self._stack) - 1, -1, -1):  # tolerate unclosed tags, as browsers do
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data):
        if data.strip() and not any(t in ("style", "script") for t, _ in self._stack):
            self.text.append(data.strip())
            self.flow.append(data.strip())

    def code_inputs(self) -> list:
        """Elements of a code cell's input (its prompt, editor or highlighted source)."""
        marks = {"jp-InputArea", "jp-InputPrompt", "jp-CodeMirrorEditor", "jp-Editor", "highlight"}
        return [(t, c) for t, c, above in self.elements if "jp-CodeCell" in above | c and c & marks]
