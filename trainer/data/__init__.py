"""The data room: streaming the shards into batches (`stream`), the count of samples read against those the
shards should hold (`reads`), the image transforms (`transforms`, `randaugment`) and decoding on the device
(`device_decode`).
"""
