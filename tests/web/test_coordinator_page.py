"""The alliance secretariat's page in Chromium: file import with row-level errors, the batch
job with its progress, allocation, gap heatmap and downloads, model versions, retraining and
rollback."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest

from .browser import expect

BAD_NEEDS = ("名称,描述,技能,人数,层次\n"
             "中药提取工,负责提取浓缩,GMP,3,高职专科\n"
             ",没有名称的需求,,2,\n"
             "制粒工,颗粒制粒,制粒,很多,\n")
GOOD_NEEDS = ("名称,描述,技能,人数,层次\n"
              "中药提取工,负责中药提取浓缩工序,GMP;提取浓缩,3,高职专科\n"
              "喷雾干燥操作工,喷雾干燥塔操作与清洁,喷雾干燥,2,高职专科\n")


def _csv(name: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}


def test_coordinator_imports_a_file_with_row_level_errors(tab, world):
    page = tab.page
    world.sign_in(tab, "nanhai")
    expect(page.locator("#who")).to_contain_text("联盟秘书处")
    expect(page.locator("[data-tab=import]")).to_have_text("导入数据")
    expect(page.locator("#tab-import")).to_be_visible()
    page.locator("#import-kind").select_option("needs")
    # The owners arrive with the alliance's organisations (a request of their own).
    herbal = page.locator("#import-owner option").filter(has_text="南海本草颗粒制药")
    expect(herbal).to_have_count(1)
    owners = page.locator("#import-owner option").all_inner_texts()
    assert not any("天府云数" in o for o in owners), owners  # another alliance's member
    page.locator("#import-owner").select_option(label=next(o for o in owners if "南海本草" in o))

    page.locator("#import-form button[type=submit]").click()
    expect(page.locator("#import-status")).to_have_text("请选择文件。")

    page.locator("#import-file").set_input_files(_csv("needs.csv", BAD_NEEDS))
    page.locator("#import-form button[type=submit]").click()
    expect(page.locator("#import-status")).to_contain_text("文件未导入")
    rows = page.locator("#import-problems table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#import-problems thead")).to_contain_text("行")
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
    assert cells[0][0] == "3" and cells[0][1] in ("名称", "title"), cells
    assert cells[1][0] == "4" and cells[1][1] in ("人数", "headcount"), cells
    tab.shot("coordinator-import-errors")
    with world.client("herbal") as c:
        assert c.get("/api/v1/needs").json()["total"] == 2  # all rows or none

    page.locator("#import-file").set_input_files(_csv("needs.csv", GOOD_NEEDS))
    page.locator("#import-form button[type=submit]").click()
    expect(page.locator("#import-status")).to_have_text("已导入 2 条记录。")
    expect(page.locator("#import-problems table")).to_have_count(0)
    with world.client("herbal") as c:
        titles = [n["title"] for n in c.get("/api/v1/needs").json()["items"]]
    assert "喷雾干燥操作工" in titles and len(titles) == 4

    # Programs from a spreadsheet, for one of the alliance's colleges.
    book = openpyxl.Workbook()
    book.active.append(["专业名称", "专业代码", "描述", "层次", "毕业生人数"])
    book.active.append(["中药制药（现代学徒制班）", "520415", "中药配方颗粒提取、浓缩、制粒",
                        "高职专科", 30])
    buf = io.BytesIO()
    book.save(buf)
    page.locator("#import-kind").select_option("programs")
    college = next(o for o in page.locator("#import-owner option").all_inner_texts()
                   if "佛山南海职业技术学院" in o)
    page.locator("#import-owner").select_option(label=college)
    page.locator("#import-file").set_input_files({
        "name": "programs.xlsx", "buffer": buf.getvalue(),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    page.locator("#import-form button[type=submit]").click()
    expect(page.locator("#import-status")).to_have_text("已导入 1 条记录。")
    with world.client("fsvc") as c:
        programs = c.get("/api/v1/programs").json()["items"]
    assert any(p["title"] == "中药制药（现代学徒制班）" and p["graduates_per_year"] == 30
               for p in programs)


def test_a_coordinator_cannot_change_the_shared_model(tab, world):
    page = tab.page
    world.sign_in(tab, "nanhai")  # one live model serves every alliance: admins change it
    page.locator("[data-tab=models]").click()
    expect(page.locator("#models-table tbody tr")).to_have_count(1)
    expect(page.locator("#retrain")).to_be_disabled()


def test_models_retrain_and_roll_back(tab, world):
    page = tab.page
    world.sign_in(tab, "admin")
    page.locator("[data-tab=models]").click()
    rows = page.locator("#models-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge.live")).to_have_text("当前使用")
    first = rows.first.get_attribute("data-version")

    page.locator("#retrain-force").check()
    page.locator("#retrain").click()
    expect(page.locator("#retrain-job")).to_be_visible()
    expect(page.locator("#retrain-job-label")).to_contain_text("任务 #")
    expect(page.locator("#retrain-job-label")).to_contain_text("已完成", timeout=120_000)
    expect(page.locator("#retrain-job-pct")).to_have_text("100%")
    expect(page.locator("#models-status")).to_contain_text("重新训练完成")
    expect(rows).to_have_count(2)
    newest = rows.first.get_attribute("data-version")
    assert newest != first
    expect(rows.first.locator(".badge.live")).to_be_visible()
    expect(rows.first.locator(".metrics")).to_contain_text("留出需求上的排序质量 NDCG@10")
    expect(rows.first.locator(".metrics")).to_contain_text("匹配度校准误差")
    expect(rows.first.locator(".metrics")).not_to_contain_text("fit_seconds")
    tab.shot("coordinator-models")

    page.locator(f"#models-table tr[data-version='{first}'] button").click()
    expect(page.locator("#models-status")).to_have_text(f"已启用版本 {first}。")
    expect(page.locator(f"#models-table tr[data-version='{first}'] .badge.live")).to_be_visible()
    expect(page.locator(f"#models-table tr[data-version='{newest}'] button")).to_be_visible()
    with world.client("admin") as c:
        live = [v["version"] for v in c.get("/api/v1/models").json()["items"] if v["live"]]
    assert live == [first]
    page.locator("#lang").click()
    expect(page.locator("[data-tab=models]")).to_have_text("Models")
    expect(page.locator(f"#models-table tr[data-version='{newest}'] button")).to_have_text(
        "Activate (roll back)")


def test_admin_gets_the_coordinators_page(tab, world):
    page = tab.page
    world.sign_in(tab, "admin")
    expect(page.locator("#view-coordinator")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("管理员")


def _require_batch_api(world):
    with world.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    if "/api/v1/batch" not in paths:
        pytest.skip("the batch API (POST /api/v1/batch) is not in this app")


def test_batch_job_progress_allocation_gap_and_downloads(tab, world):
    _require_batch_api(world)
    page = tab.page
    world.sign_in(tab, "nanhai")
    page.locator("[data-tab=batch]").click()
    expect(page.locator("#tab-batch h2").first).to_have_text("批量匹配与分配")
    expect(page.locator("#batch-needs")).to_be_hidden()  # the database is the default input
    page.locator("#batch-topk").fill("5")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/batch")) as started:
        page.locator("#batch-start").click()
    job = started.value.json()
    assert started.value.status == 202 and job["kind"] == "batch"
    expect(page.locator("#batch-job")).to_be_visible()
    expect(page.locator("#batch-job-label")).to_have_text(f"任务 #{job['id']}：已完成",
                                                          timeout=120_000)
    expect(page.locator("#batch-job-pct")).to_have_text("100%")
    results = page.locator("#batch-results")
    expect(results).to_be_visible()
    expect(page.locator("#batch-summary")).to_contain_text("个需求")
    expect(page.locator("#alloc-summary")).to_contain_text("分配：")
    alloc_rows = page.locator("#alloc-table tbody tr")
    expect(alloc_rows.first).to_be_visible()
    expect(page.locator("#alloc-table thead")).to_contain_text("分配人数")
    assert page.locator("#gap-heatmap td.short, #gap-heatmap td.ok").count() >= 1
    expect(page.locator("#gap-heatmap thead")).to_contain_text("广东省")
    expect(page.locator("#gap-heatmap tbody")).to_contain_text("5204 中医药类 · 医药卫生大类")
    assert _raw_headers(page, "zh") == []
    tab.shot("coordinator-batch-results")

    # Downloads: fetched with the key in a header, saved from a blob: URL.
    with page.expect_download() as got:
        page.locator("#downloads button[data-result=allocation][data-format=csv]").click()
    download = got.value
    assert download.url.startswith("blob:") and world.keys["nanhai"] not in download.url
    assert download.suggested_filename.endswith("allocation.csv")
    with open(download.path(), encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"need_id", "program_id", "assigned"} <= set(rows[0])
    with page.expect_download() as got:
        page.locator("#downloads button[data-result=gap][data-format=xlsx]").click()
    assert got.value.suggested_filename.endswith("gap.xlsx")
    with open(got.value.path(), "rb") as fh:
        sheet = openpyxl.load_workbook(io.BytesIO(fh.read()), read_only=True).active
    header = [c for c in next(sheet.iter_rows(values_only=True))]
    assert {"category", "province", "shortfall"} <= set(header)

    # After a reload the newest batch is shown again.
    page.reload()
    page.locator("[data-tab=batch]").click()
    expect(page.locator("#alloc-table tbody tr").first).to_be_visible()
    page.locator("#lang").click()
    expect(page.locator("#alloc-table thead")).to_contain_text("Assigned")
    expect(page.locator("#gap-heatmap tbody")).to_contain_text(
        "5204 中医药类 · medicine and health")
    expect(page.locator("#tab-batch h3").first).to_have_text(
        "Supply–demand gap (program group × province)")
    assert _raw_headers(page, "en") == []
    tab.shot("coordinator-batch-results-english")


def _raw_headers(page, lang: str) -> list[str]:
    """The headers of the batch results' tables that show a column key (``enterprise_id``)
    instead of a label, or on the Chinese page an English placeholder (``(unknown)``)."""
    headers = [h.strip() for h in page.locator("#batch-results th").all_inner_texts()]
    raw = re.compile(r"[a-z]+_[a-z_]+" if lang == "en" else r"[a-z_]+|\(\w+\)")
    return [h for h in headers if raw.fullmatch(h)]


def test_batch_from_uploaded_files_reports_bad_rows(tab, world):
    _require_batch_api(world)
    page = tab.page
    world.sign_in(tab, "nanhai")
    page.locator("[data-tab=batch]").click()
    page.locator("input[name=source][value=files]").check()
    expect(page.locator("#batch-needs")).to_be_visible()
    page.locator("#batch-start").click()
    expect(page.locator("#batch-status")).to_have_text("请选择需求文件和专业文件。")
    needs = "need_id,title,text,headcount\nn1,中药提取工,中药配方颗粒提取浓缩,3\nn2,,没有名称,2\n"
    programs = ("program_id,title,text,graduates_per_year\n"
                "p1,中药制药,中药配方颗粒生产与质量检验,40\n")
    page.locator("#batch-needs").set_input_files(_csv("needs.csv", needs))
    page.locator("#batch-programs").set_input_files(_csv("programs.csv", programs))
    page.locator("#batch-start").click()
    rows = page.locator("#batch-problems table tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("#batch-problems")).to_contain_text("title")
    tab.shot("coordinator-batch-upload-errors")

    good = needs.replace("n2,,没有名称,2", "n2,喷雾干燥操作工,喷雾干燥塔操作,2")
    page.locator("#batch-needs").set_input_files(_csv("needs.csv", good))
    with page.expect_response(lambda r: r.url.endswith("/api/v1/batch/upload")) as started:
        page.locator("#batch-start").click()
    assert started.value.status == 202
    job = started.value.json()
    expect(page.locator("#batch-job-label")).to_have_text(f"任务 #{job['id']}：已完成",
                                                          timeout=120_000)
    expect(page.locator("#batch-summary")).to_contain_text("2 个需求，1 个专业")
    expect(page.locator("#batch-problems table")).to_have_count(0)
