"""The data room: streaming the shards into batches (`stream`), the image transforms (`transforms`,
`randaugment`) and decoding on the device (`device_decode`).
"""
