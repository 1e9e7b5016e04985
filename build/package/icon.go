package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// brickIcon draws the Brickferry glyph, a small brick wall, at size×size
// pixels on a transparent background. The layout is on a 32-unit grid and
// scaled, so the 32×32 task icon and the 128×128 extension icon match.
func brickIcon(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	u := float64(size) / 32
	fill := func(x0, y0, x1, y1 float64, c color.NRGBA) {
		for y := int(y0 * u); y < int(y1*u); y++ {
			for x := int(x0 * u); x < int(x1*u); x++ {
				img.SetNRGBA(x, y, c)
			}
		}
	}
	dark := color.NRGBA{R: 0xB2, G: 0x2D, B: 0x1A, A: 0xFF}  // brick shadow
	brick := color.NRGBA{R: 0xE8, G: 0x47, B: 0x2E, A: 0xFF} // brick face
	light := color.NRGBA{R: 0xF6, G: 0x8A, B: 0x6E, A: 0xFF} // top edge highlight
	// Rows of bricks (x ranges) with one unit of mortar between them; the
	// middle row is offset by half a brick, as in a running bond.
	rows := []struct {
		y      float64
		bricks [][2]float64
	}{
		{4, [][2]float64{{2, 15}, {17, 30}}},
		{13, [][2]float64{{2, 8}, {10, 22}, {24, 30}}},
		{22, [][2]float64{{2, 15}, {17, 30}}},
	}
	for _, r := range rows {
		for _, b := range r.bricks {
			fill(b[0], r.y, b[1], r.y+7, dark)
			fill(b[0], r.y, b[1]-1, r.y+6, brick)
			fill(b[0], r.y, b[1]-1, r.y+1, light)
		}
	}
	return img
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
