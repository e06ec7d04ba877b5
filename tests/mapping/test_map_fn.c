/* Unit tests of the mapping functions (mappings/map_fn.h): dates and zones, decimal
 * formatting, UTF-8 case, substring and trim. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mappings/shape/map_fn.h"

static const char *fmt(const char *text, const char *from, const char *zin, const char *to, const char *zout) {
  static char out[128];
  char why[256];
  int in_off = 0, out_off = 0, ms = 0;
  int64_t s = 0;
  if (lt_map_zone_parse(zin, &in_off) || lt_map_zone_parse(zout, &out_off)) return "(zone)";
  if (lt_map_date_parse(text, from, in_off, &s, &ms, why, sizeof why)) return "(error)";
  if (lt_map_date_format(s, ms, to, out_off, out, sizeof out) < 0) return "(small)";
  return out;
}

static const char *num(const char *n, int decimals, const char *group, const char *point) {
  static char out[128];
  if (lt_map_number_format(n, decimals, group, point, out, sizeof out)) return "(error)";
  return out;
}

int main(void) {
  int off = -1;
  char why[256];
  int64_t s;
  int ms;

  /* zones: fixed offsets only, Vietnam is +07:00 */
  CHECK(lt_map_zone_parse("Asia/Ho_Chi_Minh", &off) == 0 && off == 420);
  CHECK(lt_map_zone_parse("-03:30", &off) == 0 && off == -210);
  CHECK(lt_map_zone_parse("Asia/Tokyo", &off) == -1);
  CHECK(lt_map_zone_parse("+7", &off) == -1);
  CHECK(lt_map_zone_parse("+15:00", &off) == -1);

  /* DVCQG yyyyMMddHHmmss in +07:00 <-> ISO 8601 */
  CHECK_STR(fmt("2024-01-15T01:30:00Z", "iso8601", "UTC", "yyyyMMddHHmmss", "Asia/Ho_Chi_Minh"), "20240115083000");
  CHECK_STR(fmt("20240115083000", "yyyyMMddHHmmss", "Asia/Ho_Chi_Minh", "iso8601", "UTC"), "2024-01-15T01:30:00Z");
  CHECK_STR(fmt("20241231200000", "yyyyMMddHHmmss", "UTC", "yyyy/MM/dd HH:mm:ss", "+07:00"), "2025/01/01 03:00:00");
  /* edXML forms */
  CHECK_STR(fmt("25/04/2019 17:45:00", "dd/MM/yyyy HH:mm:ss", "+07:00", "yyyy/MM/dd HH:mm:ss", "+07:00"),
            "2019/04/25 17:45:00");
  CHECK_STR(fmt("2019/04/11", "yyyy/MM/dd", "+07:00", "iso8601", "+07:00"), "2019-04-11T00:00:00+07:00");
  /* an offset in the text wins over the zone */
  CHECK_STR(fmt("2024-01-15T08:30:00-05:00", "iso8601", "+07:00", "iso8601", "+07:00"), "2024-01-15T20:30:00+07:00");
  /* fractions of ISO input, milliseconds out */
  CHECK_STR(fmt("2024-01-15T08:30:00.5+07:00", "iso8601", "UTC", "HH:mm:ss.SSS", "UTC"), "01:30:00.500");
  /* leap years, before the epoch, two-digit years */
  CHECK_STR(fmt("2000-02-29", "yyyy-MM-dd", "UTC", "dd/MM/yy", "UTC"), "29/02/00");
  CHECK_STR(fmt("1950-01-01T00:00:00+07:00", "iso8601", "UTC", "iso8601", "UTC"), "1949-12-31T17:00:00Z");
  CHECK_STR(fmt("240115", "yyMMdd", "UTC", "yyyy-MM-dd", "UTC"), "2024-01-15");
  /* quoted text in patterns */
  CHECK_STR(fmt("2024-01-15", "yyyy-MM-dd", "UTC", "'ngày' dd 'tháng' MM", "UTC"), "ngày 15 tháng 01");

  /* invalid dates are refused with a reason */
  CHECK(lt_map_date_parse("1900-02-29", "yyyy-MM-dd", 0, &s, &ms, why, sizeof why) == -1);
  CHECK_CONTAINS(why, "not a real date");
  CHECK(lt_map_date_parse("2024-04-31", "yyyy-MM-dd", 0, &s, &ms, why, sizeof why) == -1);
  CHECK(lt_map_date_parse("20240115246000", "yyyyMMddHHmmss", 0, &s, &ms, why, sizeof why) == -1);
  CHECK(lt_map_date_parse("2024-01-15 ", "yyyy-MM-dd", 0, &s, &ms, why, sizeof why) == -1);
  CHECK_CONTAINS(why, "does not match");
  CHECK(lt_map_date_parse("2024-1-15", "yyyy-MM-dd", 0, &s, &ms, why, sizeof why) == -1);
  CHECK(lt_map_date_parse("", "yyyy", 0, &s, &ms, why, sizeof why) == -1);
  CHECK(lt_map_date_parse("2024-01-15T08:30:00", "iso8601", 0, &s, &ms, why, sizeof why) == -1);
  CHECK(lt_map_date_pattern_check("dd.MM.yyyy hh", why, sizeof why) == -1);
  CHECK_CONTAINS(why, "unknown letter 'h'");
  CHECK(lt_map_date_pattern_check("HH:mm", why, sizeof why) == -1);
  CHECK(lt_map_date_pattern_check("'open", why, sizeof why) == -1);
  CHECK(lt_map_date_pattern_check("yyyyMMddHHmmss", why, sizeof why) == 0);

  /* numbers: decimal arithmetic on text, half away from zero */
  CHECK_STR(num("50000", 0, ".", ","), "50.000");
  CHECK_STR(num("1234567.891", 2, ",", "."), "1,234,567.89");
  CHECK_STR(num("9.995", 2, "", "."), "10.00");
  CHECK_STR(num("999999.5", 0, ".", ","), "1.000.000");
  CHECK_STR(num("-0.4", 0, "", "."), "0");
  CHECK_STR(num("-1234", 1, " ", ","), "-1 234,0");
  CHECK_STR(num("0.05", 1, "", "."), "0.1");
  CHECK_STR(num("007", 0, ",", "."), "7");
  CHECK_STR(num("1e5", 0, "", "."), "(error)");
  CHECK_STR(num("12.", 0, "", "."), "(error)");
  CHECK_STR(num(".5", 0, "", "."), "(error)");
  CHECK_STR(num("50,000", 0, "", "."), "(error)");
  CHECK_STR(num("", 0, "", "."), "(error)");

  /* UTF-8 */
  char *t = lt_map_utf8_case("Nguyễn Văn Đức", 1);
  CHECK_STR(t, "NGUYỄN VĂN ĐỨC");
  free(t);
  t = lt_map_utf8_case("ĐẶNG THỊ ÁNH", 0);
  CHECK_STR(t, "đặng thị ánh");
  free(t);
  t = lt_map_utf8_substring("Hà Nội", 3, 3);
  CHECK_STR(t, "Nội");
  free(t);
  t = lt_map_utf8_substring("Hà", 5, 2);
  CHECK_STR(t, "");
  free(t);
  t = lt_map_trim("\xc2\xa0 Hà Nội \t\n");
  CHECK_STR(t, "Hà Nội");
  free(t);
  t = lt_map_trim("   ");
  CHECK_STR(t, "");
  free(t);
  CHECK(lt_map_utf8_case("\xc3\x28", 1) == NULL);
  CHECK(lt_map_utf8_substring("\xe1\xbb", 0, 1) == NULL);
  CHECK(lt_map_utf8_valid("a\0b", 3) == 0);
  CHECK(lt_map_utf8_valid("\xed\xa0\x80", 3) == 0); /* a UTF-16 surrogate */
  CHECK(lt_map_utf8_valid("\xc0\xaf", 2) == 0);     /* overlong */
  CHECK(lt_map_utf8_valid("ố", strlen("ố")) == 1);

  /* one-letter date fields: one or two digits read, no padding written */
  CHECK_STR(fmt("5/3/2024 8:05:09", "d/M/yyyy H:mm:ss", "+07:00", "iso8601", "+07:00"), "2024-03-05T08:05:09+07:00");
  CHECK_STR(fmt("15/12/2024 14:00:00", "d/M/yyyy H:mm:ss", "+07:00", "d/M/yy H:m:s", "+07:00"), "15/12/24 14:0:0");
  CHECK_STR(fmt("31/2/2024 8:00:00", "d/M/yyyy H:mm:ss", "+07:00", "iso8601", "+07:00"), "(error)");
  CHECK_STR(fmt("5/3/2024 8:5:09", "d/M/yyyy H:mm:ss", "+07:00", "iso8601", "+07:00"), "(error)");
  /* title case, accents, folding: precomposed and decomposed Vietnamese */
  struct {
    const char *in;
    enum lt_map_text how;
    const char *out;
  } texts[] = {
      {"NGUYỄN văn đức-anh", LT_MAP_TITLE, "Nguyễn Văn Đức-Anh"},
      {"nguye\xcc\x82\xcc\x83n VA\xcc\x86N", LT_MAP_TITLE, "Nguye\xcc\x82\xcc\x83n Va\xcc\x86n"},
      {"o'clock ở huế", LT_MAP_TITLE, "O'clock Ở Huế"},
      {"Đặng Thị Ánh", LT_MAP_UNACCENT, "Dang Thi Anh"},
      {"Nguyễn ĐỨC", LT_MAP_FOLD, "nguyen duc"},
      {"nguye\xcc\x82\xcc\x83n", LT_MAP_FOLD, "nguyen"},
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    t = lt_map_utf8_text(texts[i].in, texts[i].how);
    CHECK_STR(t, texts[i].out);
    free(t);
  }
  CHECK(lt_map_utf8_text("\xc3\x28", LT_MAP_TITLE) == NULL);
  t = lt_map_pad("42", 6, "0", 1);
  CHECK_STR(t, "000042");
  free(t);
  t = lt_map_pad("Hà", 4, ".", 0);
  CHECK_STR(t, "Hà..");
  free(t);
  t = lt_map_pad("toolong", 3, "0", 1);
  CHECK_STR(t, "toolong");
  free(t);
  /* base64: round trip, padding, refusals */
  t = lt_map_base64_encode("Thủ Đức", strlen("Thủ Đức"));
  CHECK_STR(t, "VGjhu6cgxJDhu6lj");
  size_t dl = 0;
  unsigned char *d = lt_map_base64_decode(t, &dl);
  CHECK(d && dl == strlen("Thủ Đức") && !memcmp(d, "Thủ Đức", dl));
  free(d);
  free(t);
  const char *bad64[] = {"ab-_", "QQ=A", "QR==", "Q", "QQ==="};
  for (size_t i = 0; i < sizeof bad64 / sizeof bad64[0]; i++) {
    d = lt_map_base64_decode(bad64[i], &dl);
    CHECK(d == NULL);
    free(d);
  }
  d = lt_map_base64_decode("QUJD\r\nREVG", &dl);
  CHECK(d && dl == 6 && !memcmp(d, "ABCDEF", 6));
  free(d);
  /* numbers with separators */
  char out[64];
  CHECK(lt_map_number_parse("1.234.567,5", ".", ",", out, sizeof out) == 0);
  CHECK_STR(out, "1234567.5");
  CHECK(lt_map_number_parse("100.000", ".", ",", out, sizeof out) == 0);
  CHECK_STR(out, "100000");
  CHECK(lt_map_number_parse("-12", ".", ",", out, sizeof out) == 0);
  CHECK_STR(out, "-12");
  const char *badnum[] = {"1.23", "12.3456", ".100", "1..000", "1,", "abc", ""};
  for (size_t i = 0; i < sizeof badnum / sizeof badnum[0]; i++)
    CHECK(lt_map_number_parse(badnum[i], ".", ",", out, sizeof out) == -1);
  return check_done();
}
