/* The few content types the file connectors know, both ways: a file name's extension gives the
 * `content-type` of what file-in emits; a record's content-type gives the extension of the file
 * file-out writes by default. */
#ifndef LT_FILE_TYPES_H
#define LT_FILE_TYPES_H

/* application/json, application/xml, text/csv or application/octet-stream (borrowed). */
const char *file_content_type(const char *name);
/* ".json", ".xml", ".csv" for those types (parameters and case ignored; +json and +xml count;
 * text/xml too), else "" (borrowed). */
const char *file_extension(const char *content_type);

#endif
