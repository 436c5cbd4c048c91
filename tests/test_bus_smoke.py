import pyarrow as pa


def test_roundtrip(any_bus):
    t = pa.table({"item_id": ["a"], "title": ["x"], "text": ["x"]})
    any_bus.write_table("catalog", t)
    assert any_bus.read_table("catalog").column("item_id").to_pylist() == ["a"]
