"""Reading the report's HTML tables back (pandas' to_html layout: row-spanning index cells)."""
from typing import Dict, List

from bs4 import BeautifulSoup


def parse(page: str) -> BeautifulSoup:
    return BeautifulSoup(page, "html.parser")


def rows(soup: BeautifulSoup, table_id: str) -> List[List[str]]:
    """Body rows as cell texts, index cells included, row spans repeated on every row they cover."""
    table = soup.find("table", id=table_id)
    assert table is not None, f"no table '{table_id}' in the report"
    result, spans = [], {}  # column -> [text, rows still covered]
    for tr in table.tbody.find_all("tr"):
        cells, row, column = iter(tr.find_all(["th", "td"])), [], 0
        while True:
            if column in spans:
                text, left = spans[column]
                row.append(text)
                spans[column][1] -= 1
                if spans[column][1] == 0:
                    del spans[column]
            else:
                cell = next(cells, None)
                if cell is None:
                    break
                row.append(cell.get_text(strip=True))
                if int(cell.get("rowspan", 1)) > 1:
                    spans[column] = [row[-1], int(cell["rowspan"]) - 1]
            column += 1
        result.append(row)
    return result


def header(soup: BeautifulSoup, table_id: str) -> List[str]:
    """The first header row (blank over the index columns)."""
    return [th.get_text(strip=True) for th in soup.find("table", id=table_id).thead.find("tr").find_all("th")]


def records(soup: BeautifulSoup, table_id: str, index_levels: int = 1) -> Dict[tuple, Dict[str, str]]:
    """{index labels: {column: text}} of a table whose index is its first index_levels cells."""
    names = header(soup, table_id)[index_levels:]
    return {tuple(r[:index_levels]): dict(zip(names, r[index_levels:])) for r in rows(soup, table_id)}
