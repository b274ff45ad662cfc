"""`posmask study`: a whole grid of runs (grids/*.toml) pre-trained, evaluated and reported, resumably."""
