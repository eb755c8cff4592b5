"""--format's Go-template subset: field paths, functions, range/if; never Python evaluation."""

import json

import pytest

from cnet.cli import gotemplate as gt
from cnet.cli import output

ROW = {
    "name": "web",
    "id": "abc123",
    "state": "running",
    "pid": 42,
    "ips": ["10.0.0.2", "10.1.0.2"],
    "ports": [],
    "command": ["sleep", "60"],
    "networks": ["n1", "n2"],
    "labels": {"app": "x", "tier": "db"},
    "status": "running",
}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{{.Name}}", "web"),
        ("{{.name}} {{.ID}}", "web abc123"),
        ("{{.Pid}}", "42"),
        ("{{json .IPs}}", '["10.0.0.2", "10.1.0.2"]'),
        ("{{.Ips}}", "[10.0.0.2 10.1.0.2]"),
        ('{{join .ips ","}}', "10.0.0.2,10.1.0.2"),
        ("{{range .networks}}<{{.}}>{{end}}", "<n1><n2>"),
        ("{{range .ports}}x{{else}}none{{end}}", "none"),
        ("{{if .pid}}up{{else}}down{{end}}", "up"),
        ("{{.labels}}", "map[app:x tier:db]"),
        ('{{index .labels "tier"}}', "db"),
        ("{{.Name | upper}}", "WEB"),
        ("{{len .networks}}", "2"),
        ("{{.Name}}\\t{{.Pid}}", "web\t42"),
        ("a {{/* comment */}}b", "a b"),
    ],
)
def test_render(template, expected):
    assert gt.render(template, ROW) == expected


@pytest.mark.parametrize(
    "template, error",
    [
        ("{{.Nope}}", "no field 'Nope'"),
        ("{{range .ips}}", "missing {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ('{{__import__ "os"}}', "not a function"),
        ("{{os.system}}", "cannot read"),
    ],
)
def test_errors_are_one_line_user_errors(template, error):
    with pytest.raises(gt.TemplateError, match=error.replace("{", r"\{").replace("}", r"\}")):
        gt.render(template, ROW)


def test_ps_docker_names_and_json_lines():
    assert gt.render("{{.Names}} {{.State}} {{.Networks}} {{.Labels}}", output.ps_view(ROW)) == (
        "web running n1,n2 app=x,tier=db"
    )
    (line,) = output.format_rows([ROW], "json")
    data = json.loads(line)
    assert (
        data["pid"] == 42 and data["ips"] == ["10.0.0.2", "10.1.0.2"] and data["labels"] == {"app": "x", "tier": "db"}
    )


def test_inspect_docker_paths():
    item = {
        "id": "abc",
        "name": "web",
        "pid": 7,
        "state": "running",
        "exit_code": None,
        "started": None,
        "finished": None,
        "hostname": "web",
        "labels": {},
        "command": ["sh"],
        "networks": [
            {
                "network": "n1",
                "ip": "10.0.0.2",
                "prefix_len": 24,
                "gateway": "10.0.0.1",
                "mac": "m",
                "aliases": ["db"],
                "dns_names": ["web", "db"],
            }
        ],
    }
    view = output.inspect_view(item)
    assert gt.render("{{.State.Pid}} {{.State.Status}} {{.State.Running}}", view) == "7 running true"
    assert gt.render("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", view) == "10.0.0.2"
    assert gt.render("{{.NetworkSettings.Networks.n1.DNSNames}}", view) == "[web db]"
    assert gt.render("{{.state}}", view) == "running"
