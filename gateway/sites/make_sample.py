"""Generate gateway/sites/sample_mall.toml, the made-up reference mall used by tests and demos.

Run ``python -m gateway.sites.make_sample > gateway/sites/sample_mall.toml``. The TOML is
committed; this script only exists so the geometry stays consistent when it is edited.

Plan (x east, y north, metres; the building is 120 m x 70 m, origin at its south-west corner):
west anchors x 0-20, south store row y 0-24, mall corridor y 24-46 around a central atrium,
north store row y 46-70, east end x 100-120 (metro concourse on B1, anchor on L1/L2, food court
on L3). L1's outline also includes the street strips south (y -10..0) and north (y 70..80).
"""
from __future__ import annotations

import sys

FLOORS = [
    # id, name, level, elevation_m, height_m, outline
    ("B1", "Basement (metro level)", -1, -5.0, 5.0, (0, 0, 120, 70)),
    ("L1", "Ground floor (street level)", 0, 0.0, 5.5, (0, -10, 120, 80)),
    ("L2", "First floor", 1, 5.5, 5.0, (0, 0, 120, 70)),
    ("L3", "Second floor (food court)", 2, 10.5, 5.0, (0, 0, 120, 70)),
]

# (tenant, category, popularity) per floor: south row (west to east), then north row.
SOUTH = {
    "B1": [("Backhaus Brotzeit", "food", 1.6), ("Apotheke am Markt", "health", 1.3),
           ("Kiosk Nord-Sued", "services", 1.0), ("QuickFix Phone Repair", "services", 0.7),
           ("Blumen Lindner", "home", 0.6), ("Sparkasse Mall Branch", "services", 0.9),
           ("Reinweiss Dry Cleaning", "services", 0.5), ("Pho Saigon Express", "food", 1.4)],
    "L1": [("Nordlicht Fashion", "fashion", 1.8), ("Velvet & Vine Beauty", "beauty", 1.5),
           ("Goldmark Jewellers", "jewellery", 0.8), ("Urban Stride Shoes", "shoes", 1.3),
           ("Kaffeehaus Lumen", "cafe", 1.7), ("Linea Donna", "fashion", 1.2),
           ("Optik Klarblick", "optical", 0.6), ("Mondschein Accessories", "fashion", 0.9)],
    "L2": [("Pixelwerk Electronics", "electronics", 1.9), ("Gamesphere", "electronics", 1.2),
           ("Fjellstad Outdoor", "sports", 1.1), ("Sprint Athletics", "sports", 1.3),
           ("Blue Harbour Denim", "fashion", 1.4), ("Little Otter Kids", "fashion", 0.9),
           ("Casa Bella Home", "home", 0.8), ("SoundCloud Nine Audio", "electronics", 0.7)],
    "L3": [("Seitenweise Books", "books", 1.0), ("Toybox Planet", "toys", 1.1),
           ("Trattoria Da Luca", "food", 1.5), ("Sakura Sushi Bar", "food", 1.4),
           ("Burger Brigade", "food", 1.6), ("Ember Steakhouse", "food", 1.0),
           ("Greenleaf Salads", "food", 0.9), ("Sweet Spot Desserts", "food", 1.2)],
}
NORTH = {
    "B1": [("Fresh Press Juice", "food", 1.0), ("Tabak & Presse", "services", 0.8),
           ("Cellular Point", "electronics", 0.8), ("Schluesseldienst Berger", "services", 0.4),
           ("Metro Mart Convenience", "grocery", 1.5), ("Nails by Mira", "beauty", 0.6)],
    "L1": [("Atelier Brandt", "fashion", 1.0), ("Soleil Perfumery", "beauty", 1.1),
           ("Marlowe Menswear", "fashion", 1.0), ("Tea Garden", "cafe", 1.2),
           ("Stitch & Thread", "fashion", 0.8), ("Lumen Watches", "jewellery", 0.6)],
    "L2": [("Ironclad Fitness Gear", "sports", 0.8), ("Northwind Travel Goods", "fashion", 0.7),
           ("Papier & Co Stationery", "books", 0.8), ("Pet Paradise", "home", 0.9),
           ("Glow Cosmetics", "beauty", 1.2), ("Bricks & Blocks", "toys", 1.0)],
    "L3": [("Starlight Cinema Foyer", "entertainment", 2.0), ("Arcade 88", "entertainment", 1.1),
           ("Brew Lab Coffee", "cafe", 1.4), ("Yoga Loft", "services", 0.5),
           ("Kinderland Play", "entertainment", 0.9), ("Curry Kingdom", "food", 1.2)],
}
FOOD_STALLS = [("Noodle Nest", 1.5), ("Taco Fiesta", 1.3), ("Doner Palast", 1.6),
               ("Seoul Bowl", 1.2), ("Crepe Corner", 1.0), ("Falafel Freund", 1.1),
               ("Wok & Roll", 1.4)]


def rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def zones_for(fl):
    """Yield (id, kind, name, extra dict, polygon) for one floor."""
    f = fl.lower()
    z = []
    add = lambda zid, kind, name, poly, **kw: z.append((f"{f}-{zid}", kind, name, kw, poly))

    # West end: the supermarket (B1) or the department-store anchor (L1-L3).
    if fl == "B1":
        add("supermarket", "store", "Marktgarten Supermarket", rect(0, 0, 20, 70),
            tenant="Marktgarten Supermarket", category="grocery", popularity=5.0)
    else:
        add("anchor-w", "store", f"Harwell & Finch ({fl})", rect(0, 0, 20, 70),
            tenant="Harwell & Finch", category="department", popularity=4.0)

    # Corridor ring around the atrium / central plaza.
    add("corridor-w", "corridor", "West mall", rect(20, 24, 50, 46))
    add("corridor-e", "corridor", "East mall", rect(70, 24, 100, 46))
    add("corridor-s", "corridor", "South gallery", rect(50, 24, 70, 30))
    add("corridor-n", "corridor", "North gallery", rect(50, 40, 70, 46))
    add("esc-w", "escalator", "West escalators", rect(50, 30, 54, 40),
        shaft="esc-w", connects=["B1", "L1", "L2", "L3"])
    if fl == "B1":
        add("plaza", "corridor", "Central plaza", rect(54, 30, 70, 40))
    else:
        add("atrium", "atrium", "Atrium void", rect(54, 30, 66, 40))
        add("esc-e", "escalator", "East escalators", rect(66, 30, 70, 40),
            shaft="esc-e", connects=["L1", "L2", "L3"])

    # Service cores at both ends of the north row: lift, toilets, back-of-house.
    add("lift-w", "lift", "West lift", rect(20, 46, 25, 52),
        shaft="lift-w", connects=["B1", "L1", "L2", "L3"])
    add("wc-w", "service", "Toilets west", rect(25, 46, 30, 70))
    add("boh-w", "service", "Back of house west", rect(20, 52, 25, 70))
    add("wc-e", "service", "Toilets east", rect(90, 46, 95, 70))
    add("lift-e", "lift", "East lift", rect(95, 46, 100, 52),
        shaft="lift-e", connects=["B1", "L1", "L2", "L3"])
    add("boh-e", "service", "Back of house east", rect(95, 52, 100, 70))

    # Store rows; on L1 the middle bays are the entrance halls instead.
    if fl == "L1":
        south_x = [20, 29, 38, 47, 56, None, 64, 73, 82, 91, 100]
        north_x = [30, 39, 48, 56, None, 64, 73, 82, 90]
        add("spur-s", "corridor", "South entrance hall", rect(56, 6, 64, 24))
        add("spur-n", "corridor", "North entrance hall", rect(56, 46, 64, 64))
        add("entrance-s", "entrance", "Main entrance south (Hauptstrasse)", rect(56, 0, 64, 6))
        add("entrance-n", "entrance", "North entrance (Parkallee)", rect(56, 64, 64, 70))
        add("street-s", "outside", "Hauptstrasse (street south)", rect(0, -10, 120, 0))
        add("street-n", "outside", "Parkallee (street north)", rect(0, 70, 120, 80))
    else:
        south_x = list(range(20, 101, 10))
        north_x = list(range(30, 91, 10))
    for row, xs, y0, y1, tenants in (("s", south_x, 0, 24, SOUTH[fl]),
                                     ("n", north_x, 46, 70, NORTH[fl])):
        bays = [(a, b) for a, b in zip(xs, xs[1:]) if a is not None and b is not None]
        assert len(bays) == len(tenants), (fl, row, len(bays), len(tenants))
        for i, ((x0, x1), (tenant, cat, pop)) in enumerate(zip(bays, tenants), start=1):
            add(f"{row}{i:02d}", "store", tenant, rect(x0, y0, x1, y1),
                tenant=tenant, category=cat, popularity=pop)

    # East end.
    if fl == "B1":
        add("metro-entrance", "entrance", "Metro entrance (Line 2)", rect(100, 28, 108, 42))
        add("metro", "outside", "Metro concourse (Line 2)", rect(108, 0, 120, 70))
        add("loading", "service", "Loading dock", rect(100, 0, 108, 28))
        add("plant", "service", "Plant room", rect(100, 42, 108, 70))
    elif fl in ("L1", "L2"):
        add("anchor-e", "store", f"Aurora Home & Living ({fl})", rect(100, 0, 120, 70),
            tenant="Aurora Home & Living", category="home", popularity=3.0)
    else:
        add("foodcourt", "corridor", "Food court seating", rect(100, 0, 112, 70))
        for i, (tenant, pop) in enumerate(FOOD_STALLS, start=1):
            add(f"stall{i}", "store", tenant, rect(112, 10 * (i - 1), 120, 10 * i),
                tenant=tenant, category="food", popularity=pop)
    return z


def gateways_for(fl):
    f = fl.lower()
    g = []
    ceiling = {"B1": 3.5, "L1": 3.8, "L2": 3.6, "L3": 3.6}[fl]
    both = ["ble", "wifi"]
    for x, y in ((27, 35), (42, 35), (60, 27), (60, 43), (78, 35), (93, 35)):
        g.append(dict(x=x, y=y, z=ceiling, radios=both))
    for x, y in ((10, 18), (10, 52)):
        g.append(dict(x=x, y=y, z=ceiling + 0.3, radios=["ble"]))
    # In the entrance halls on L1; elsewhere inside a store of each row (not on a party wall).
    mid_s, mid_n = ((60, 12), (60, 58)) if fl == "L1" else ((65, 12), (55, 58))
    g.append(dict(x=mid_s[0], y=mid_s[1], z=ceiling, radios=both))
    g.append(dict(x=mid_n[0], y=mid_n[1], z=ceiling, radios=both))
    if fl == "B1":
        g.append(dict(x=104, y=35, z=ceiling, radios=both))
        g.append(dict(x=114, y=35, z=ceiling, radios=both, exponent=2.8, p0_offset_db=-2.0))
    elif fl == "L3":
        g.append(dict(x=106, y=18, z=ceiling, radios=both))
        g.append(dict(x=106, y=52, z=ceiling, radios=both))
    else:
        g.append(dict(x=110, y=18, z=ceiling + 0.3, radios=["ble"]))
        g.append(dict(x=110, y=52, z=ceiling + 0.3, radios=["ble"]))
    if fl == "L1":
        # Facade units for passers-by, under the canopy, facing the street.
        g.append(dict(x=30, y=-1, z=3.0, radios=both, p0_offset_db=-1.5))
        g.append(dict(x=90, y=71, z=3.0, radios=both, sensitivity_dbm=-92.0))
    if fl == "L2":
        g[0]["p0_offset_db"] = 1.5
    return [(f"gw-{f}-{i:02d}", d) for i, d in enumerate(g, start=1)]


def fmt_num(v):
    return f"{float(v):.1f}" if float(v) != int(v) or isinstance(v, float) else f"{v:.1f}"


def fmt_poly(poly):
    return "[" + ", ".join(f"[{fmt_num(x)}, {fmt_num(y)}]" for x, y in poly) + "]"


def fmt_list(items):
    return "[" + ", ".join(f'"{s}"' for s in items) + "]"


def render():
    out = ["# MallSense sample site: a made-up four-level mall (B1 metro level, L1 street level,",
           "# L2, L3 with food court). Generated by gateway/sites/make_sample.py; schema in",
           "# docs/site-model.md. Coordinates in metres, x east, y north, one frame for all floors.",
           "schema = 1", "",
           "[site]", 'id = "sample-mall"', 'name = "Sample Mall Lindenhof"',
           'timezone = "Europe/Berlin"', "",
           "# Radio defaults per kind; p0_dbm is the RSSI at 1 m.",
           "[radio.ble]", "p0_dbm = -59.0", "exponent = 2.3", "sigma_db = 5.5",
           "floor_atten_db = 17.0", "sensitivity_dbm = -96.0", "",
           "[radio.wifi]", "p0_dbm = -47.0", "exponent = 2.8", "sigma_db = 6.5",
           "floor_atten_db = 15.0", "sensitivity_dbm = -95.0", ""]
    for fid, name, level, elev, height, (x0, y0, x1, y1) in FLOORS:
        out += ["[[floors]]", f'id = "{fid}"', f'name = "{name}"', f"level = {level}",
                f"elevation_m = {elev:.1f}", f"height_m = {height:.1f}",
                f"outline = {fmt_poly(rect(x0, y0, x1, y1))}", ""]
    for fid, *_ in FLOORS:
        out += [f"# ---- zones on {fid} " + "-" * 60]
        for zid, kind, name, kw, poly in zones_for(fid):
            out += ["[[zones]]", f'id = "{zid}"', f'floor = "{fid}"', f'kind = "{kind}"',
                    f'name = "{name}"']
            if "tenant" in kw:
                out += [f'tenant = "{kw["tenant"]}"', f'category = "{kw["category"]}"',
                        f"popularity = {kw['popularity']:.1f}"]
            if "shaft" in kw:
                out += [f'shaft = "{kw["shaft"]}"', f"connects = {fmt_list(kw['connects'])}"]
            out += [f"polygon = {fmt_poly(poly)}", ""]
    for fid, *_ in FLOORS:
        out += [f"# ---- gateways on {fid} " + "-" * 57]
        for gid, d in gateways_for(fid):
            out += ["[[gateways]]", f'id = "{gid}"', f'floor = "{fid}"',
                    f"x = {fmt_num(d['x'])}", f"y = {fmt_num(d['y'])}", f"z = {fmt_num(d['z'])}",
                    f"radios = {fmt_list(d['radios'])}"]
            for key in ("p0_offset_db", "exponent", "sensitivity_dbm"):
                if key in d:
                    out.append(f"{key} = {d[key]:.1f}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
